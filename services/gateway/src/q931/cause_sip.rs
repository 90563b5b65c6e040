//! Q.850 cause <-> SIP status mapping, from the tables of RFC 3398 (§7.2.4.1 SIP to ISUP,
//! §8.2.6.1 ISUP to SIP), the same mapping RFC 4497 applies to QSIG.

/// Location "user" in the cause IE.
const LOCATION_USER: u8 = 0;

/// SIP final status for a call cleared with `cause` at `location`. Normal clearing (16) has no
/// failure response: it ends a call with BYE or CANCEL; asked anyway, it gives 480.
pub fn sip_status(cause: u8, location: u8) -> u16 {
    match cause {
        1..=3 | 26 => 404,
        17 => 486,
        18 => 408,
        19 | 20 | 16 | 31 => 480,
        // A rejection by the user itself is final everywhere (RFC 3398's note on cause 21).
        21 if location == LOCATION_USER => 603,
        21 | 55 | 57 | 87 => 403,
        22 | 23 => 410,
        27 => 502,
        28 => 484,
        29 | 79 => 501,
        34 | 38 | 41 | 42 | 47 | 58 | 88 => 503,
        65 | 70 => 488,
        102 => 504,
        _ => 500,
    }
}

/// Q.850 cause for a SIP final failure status; unknown codes go by their class (RFC 3261 §8.1.3.2).
pub fn q850_cause(status: u16) -> u8 {
    match status {
        401..=403 | 407 | 603 => 21,
        404 | 485 | 604 => 1,
        405 => 63,
        406 | 415 | 501 => 79,
        408 | 504 => 102,
        410 => 22,
        413 | 414 | 416 | 420 | 421 | 423 | 505 | 513 => 127,
        480 => 18,
        482 | 483 => 25,
        484 => 28,
        486 | 600 => 17,
        // The request was cancelled: the caller hung up.
        487 => 16,
        488 | 606 => 127,
        502 => 38,
        400..=599 => 41,
        600..=699 => 21,
        _ => 127,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3398_isup_to_sip_rows() {
        let rows = [
            (1, 404),
            (2, 404),
            (3, 404),
            (17, 486),
            (18, 408),
            (19, 480),
            (20, 480),
            (22, 410),
            (23, 410),
            (26, 404),
            (27, 502),
            (28, 484),
            (29, 501),
            (31, 480),
            (34, 503),
            (38, 503),
            (41, 503),
            (42, 503),
            (47, 503),
            (55, 403),
            (57, 403),
            (58, 503),
            (65, 488),
            (70, 488),
            (79, 501),
            (87, 403),
            (88, 503),
            (102, 504),
            (111, 500),
            (127, 500),
        ];
        for (cause, status) in rows {
            assert_eq!(sip_status(cause, 2), status, "cause {cause}");
        }
        assert_eq!(sip_status(21, 2), 403);
        assert_eq!(sip_status(21, LOCATION_USER), 603);
    }

    #[test]
    fn rfc3398_sip_to_isup_rows() {
        let rows = [
            (400, 41),
            (401, 21),
            (402, 21),
            (403, 21),
            (404, 1),
            (405, 63),
            (406, 79),
            (407, 21),
            (408, 102),
            (410, 22),
            (413, 127),
            (414, 127),
            (415, 79),
            (416, 127),
            (420, 127),
            (421, 127),
            (423, 127),
            (480, 18),
            (481, 41),
            (482, 25),
            (483, 25),
            (484, 28),
            (485, 1),
            (486, 17),
            (500, 41),
            (501, 79),
            (502, 38),
            (503, 41),
            (504, 102),
            (505, 127),
            (513, 127),
            (600, 17),
            (603, 21),
            (604, 1),
        ];
        for (status, cause) in rows {
            assert_eq!(q850_cause(status), cause, "status {status}");
        }
    }

    #[test]
    fn unknown_codes_fall_back_by_class() {
        assert_eq!(q850_cause(499), 41);
        assert_eq!(q850_cause(580), 41);
        assert_eq!(q850_cause(699), 21);
        assert_eq!(q850_cause(999), 127);
        assert_eq!(sip_status(200, 0), 500);
    }

    #[test]
    fn busy_and_no_circuit_survive_a_round_trip() {
        for cause in [1, 17, 28, 102] {
            assert_eq!(q850_cause(sip_status(cause, 2)), cause);
        }
        assert_eq!(q850_cause(sip_status(18, 2)), 102, "408 comes back as a timeout");
        assert_eq!(q850_cause(sip_status(34, 2)), 41, "503 carries no finer cause back");
    }
}
