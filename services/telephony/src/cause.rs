//! Q.850 cause values by name, and the table of RFC 3398 between them and SIP final statuses:
//! §8.2.6.1 (ISUP cause to SIP status, what a gateway answers when the PSTN refuses a call) and
//! §7.2.4.1 (SIP status to ISUP cause, what it clears the PSTN call with when SIP refuses it).
//! RFC 4497 applies the same table to QSIG, so it serves the PRI side as well. Causes are the
//! bare 7-bit values Q.931's Cause IE carries.

pub const UNALLOCATED_NUMBER: u8 = 1;
pub const NO_ROUTE_TO_NETWORK: u8 = 2;
pub const NO_ROUTE_TO_DESTINATION: u8 = 3;
pub const CHANNEL_UNACCEPTABLE: u8 = 6;
pub const NORMAL_CLEARING: u8 = 16;
pub const USER_BUSY: u8 = 17;
pub const NO_USER_RESPONDING: u8 = 18;
pub const NO_ANSWER: u8 = 19;
pub const SUBSCRIBER_ABSENT: u8 = 20;
pub const CALL_REJECTED: u8 = 21;
pub const NUMBER_CHANGED: u8 = 22;
pub const REDIRECTED: u8 = 23;
pub const EXCHANGE_ROUTING_ERROR: u8 = 25;
pub const NON_SELECTED_USER_CLEARING: u8 = 26;
pub const DESTINATION_OUT_OF_ORDER: u8 = 27;
pub const INVALID_NUMBER_FORMAT: u8 = 28;
pub const FACILITY_REJECTED: u8 = 29;
/// Cause sent in STATUS answering a STATUS ENQUIRY.
pub const RESPONSE_TO_STATUS_ENQUIRY: u8 = 30;
pub const NORMAL_UNSPECIFIED: u8 = 31;
pub const NO_CIRCUIT_AVAILABLE: u8 = 34;
pub const NETWORK_OUT_OF_ORDER: u8 = 38;
pub const TEMPORARY_FAILURE: u8 = 41;
pub const SWITCHING_EQUIPMENT_CONGESTION: u8 = 42;
pub const CHANNEL_NOT_AVAILABLE: u8 = 44;
pub const RESOURCE_UNAVAILABLE: u8 = 47;
pub const INCOMING_CALLS_BARRED_WITHIN_CUG: u8 = 55;
pub const BEARER_CAPABILITY_NOT_AUTHORIZED: u8 = 57;
pub const BEARER_CAPABILITY_NOT_AVAILABLE: u8 = 58;
pub const SERVICE_NOT_AVAILABLE: u8 = 63;
pub const BEARER_CAPABILITY_NOT_IMPLEMENTED: u8 = 65;
pub const ONLY_RESTRICTED_DIGITAL: u8 = 70;
pub const SERVICE_NOT_IMPLEMENTED: u8 = 79;
pub const INVALID_CALL_REFERENCE: u8 = 81;
pub const CHANNEL_DOES_NOT_EXIST: u8 = 82;
pub const USER_NOT_MEMBER_OF_CUG: u8 = 87;
pub const INCOMPATIBLE_DESTINATION: u8 = 88;
pub const MANDATORY_IE_MISSING: u8 = 96;
pub const MESSAGE_TYPE_NONEXISTENT: u8 = 97;
pub const WRONG_MESSAGE_FOR_STATE: u8 = 101;
pub const RECOVERY_ON_TIMER_EXPIRY: u8 = 102;
pub const PROTOCOL_ERROR: u8 = 111;
pub const INTERWORKING: u8 = 127;

/// The Cause IE's location "user" (Q.850 §2.2.6): the called party itself.
pub const LOCATION_USER: u8 = 0;
/// Location "private network serving the local user": a cause the gateway itself gives.
pub const LOCATION_PRIVATE_LOCAL: u8 = 1;
/// Location "public network serving the local user": the PSTN's own causes.
pub const LOCATION_PUBLIC_LOCAL: u8 = 2;

/// The SIP final status for a call the PSTN cleared with `cause` (RFC 3398 §8.2.6.1), the cause
/// coming from the network (a Reason header carries no location). Normal clearing (16) has no
/// failure response, it ends a call with BYE or CANCEL; asked anyway, it gives 480.
pub fn sip_status(cause: u8) -> u16 {
    sip_status_at(cause, LOCATION_PUBLIC_LOCAL)
}

/// As `sip_status`, for a cause IE with its `location`: a rejection by the called user itself
/// (21 at location "user") is final everywhere, 603 (RFC 3398's note on cause 21).
pub fn sip_status_at(cause: u8, location: u8) -> u16 {
    match cause {
        UNALLOCATED_NUMBER | NO_ROUTE_TO_NETWORK | NO_ROUTE_TO_DESTINATION | NON_SELECTED_USER_CLEARING => 404,
        USER_BUSY => 486,
        NO_USER_RESPONDING => 408,
        NO_ANSWER | SUBSCRIBER_ABSENT | NORMAL_CLEARING | NORMAL_UNSPECIFIED => 480,
        CALL_REJECTED if location == LOCATION_USER => 603,
        CALL_REJECTED | INCOMING_CALLS_BARRED_WITHIN_CUG | BEARER_CAPABILITY_NOT_AUTHORIZED | USER_NOT_MEMBER_OF_CUG => 403,
        NUMBER_CHANGED | REDIRECTED => 410,
        DESTINATION_OUT_OF_ORDER => 502,
        INVALID_NUMBER_FORMAT => 484,
        FACILITY_REJECTED | SERVICE_NOT_IMPLEMENTED => 501,
        NO_CIRCUIT_AVAILABLE
        | NETWORK_OUT_OF_ORDER
        | TEMPORARY_FAILURE
        | SWITCHING_EQUIPMENT_CONGESTION
        | RESOURCE_UNAVAILABLE
        | BEARER_CAPABILITY_NOT_AVAILABLE
        | INCOMPATIBLE_DESTINATION => 503,
        BEARER_CAPABILITY_NOT_IMPLEMENTED | ONLY_RESTRICTED_DIGITAL => 488,
        RECOVERY_ON_TIMER_EXPIRY => 504,
        _ => 500,
    }
}

/// The Q.850 cause for a SIP status (RFC 3398 §7.2.4.1); codes the table does not name go by
/// their class (RFC 3261 §8.1.3.2). A 2xx ended in normal clearing, and so did a cancelled
/// INVITE (487: the caller hung up, §7.2.3 clears a CANCEL with 16).
pub fn for_sip_status(status: u16) -> u8 {
    match status {
        200..=299 | 487 => NORMAL_CLEARING,
        401..=403 | 407 | 603 => CALL_REJECTED,
        404 | 485 | 604 => UNALLOCATED_NUMBER,
        405 => SERVICE_NOT_AVAILABLE,
        406 | 415 | 501 => SERVICE_NOT_IMPLEMENTED,
        408 | 504 => RECOVERY_ON_TIMER_EXPIRY,
        410 => NUMBER_CHANGED,
        413 | 414 | 416 | 420 | 421 | 423 | 505 | 513 => INTERWORKING,
        480 => NO_USER_RESPONDING,
        482 | 483 => EXCHANGE_ROUTING_ERROR,
        484 => INVALID_NUMBER_FORMAT,
        486 | 600 => USER_BUSY,
        488 | 606 => INTERWORKING,
        502 => NETWORK_OUT_OF_ORDER,
        400..=599 => TEMPORARY_FAILURE,
        600..=699 => CALL_REJECTED,
        _ => INTERWORKING,
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
            assert_eq!(sip_status(cause), status, "cause {cause}");
        }
        assert_eq!(sip_status(21), 403);
        assert_eq!(sip_status_at(21, LOCATION_USER), 603);
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
            assert_eq!(for_sip_status(status), cause, "status {status}");
        }
    }

    #[test]
    fn unknown_codes_fall_back_by_class_and_success_is_normal_clearing() {
        assert_eq!(for_sip_status(499), 41);
        assert_eq!(for_sip_status(580), 41);
        assert_eq!(for_sip_status(699), 21);
        assert_eq!(for_sip_status(999), 127);
        assert_eq!(for_sip_status(200), 16);
        assert_eq!(for_sip_status(487), 16);
        assert_eq!(sip_status(200), 500);
    }

    #[test]
    fn busy_and_no_circuit_survive_a_round_trip() {
        for cause in [1, 17, 28, 102] {
            assert_eq!(for_sip_status(sip_status(cause)), cause);
        }
        assert_eq!(for_sip_status(sip_status(18)), 102, "408 comes back as a timeout");
        assert_eq!(for_sip_status(sip_status(34)), 41, "503 carries no finer cause back");
    }
}
