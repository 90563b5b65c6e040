//! ITU-T G.711: µ-law and A-law companding of 16-bit linear PCM, and the
//! direct µ-law <-> A-law conversion of G.711 Tables 3 and 4.
//!
//! The direct conversion is not `encode(decode(x))`: G.711 fixes its own
//! tables, chosen so that A -> µ -> A keeps most A-law codes unchanged, and
//! the far end compares against exactly those tables.

/// RTP static payload type of G.711 µ-law (RFC 3551).
pub const PT_PCMU: u8 = 0;
/// RTP static payload type of G.711 A-law (RFC 3551).
pub const PT_PCMA: u8 = 8;

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32_635;

/// Encodes one 16-bit linear sample as µ-law (14-bit magnitude, bias 33).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let x = i32::from(sample);
    let (sign, magnitude) = if x < 0 { (0x80, -x) } else { (0x00, x) };
    let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // biased lies in 0x84..=0x7FFF: its top bit is bit 7..=14, giving segment 0..=7.
    let segment = (31 - biased.leading_zeros() as i32) - 7;
    let mantissa = (biased >> (segment + 3)) & 0x0F;
    !((sign | (segment << 4) | mantissa) as u8)
}

/// Decodes one µ-law code to 16-bit linear.
pub fn ulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let segment = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    // magnitude <= 32124, so the cast cannot wrap.
    if code & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample as A-law (13-bit magnitude).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let x = i32::from(sample) >> 3;
    // A-law has no zero: -1 is the first negative step, hence !x for negatives.
    let (sign, magnitude) = if x < 0 { (0x00, !x) } else { (0x80, x) };
    let magnitude = magnitude.min(0x0FFF);
    let segment = if magnitude < 32 {
        0
    } else {
        (31 - magnitude.leading_zeros() as i32) - 4
    };
    let mantissa = if segment < 2 {
        (magnitude >> 1) & 0x0F
    } else {
        (magnitude >> segment) & 0x0F
    };
    ((sign | (segment << 4) | mantissa) as u8) ^ 0x55
}

/// Decodes one A-law code to 16-bit linear.
pub fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = i32::from((code >> 4) & 0x07);
    let mantissa = i32::from(code & 0x0F);
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    // magnitude <= 32256, so the cast cannot wrap.
    if code & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

/// G.711 Table 3: µ-law decoder output value number (1..=128, index + 1) to
/// the A-law one. Numbers count magnitudes from zero; the sign is carried over.
const ULAW_TO_ALAW_NUMBER: [u8; 128] = [
    1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, //
    9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, //
    25, 27, 29, 31, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, //
    46, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, //
    64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, //
    80, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, //
    97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, //
    113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128,
];

/// G.711 Table 4: A-law decoder output value number (1..=128, index + 1) to
/// the µ-law one.
const ALAW_TO_ULAW_NUMBER: [u8; 128] = [
    2, 4, 6, 8, 10, 12, 14, 16, 17, 18, 19, 20, 21, 22, 23, 24, //
    25, 26, 27, 28, 29, 30, 31, 32, 33, 33, 34, 34, 35, 35, 36, 36, //
    37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 49, 50, 50, //
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 65, //
    66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, //
    81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, //
    97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, //
    113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128,
];

/// Every µ-law code (index) converted to A-law by G.711 Table 3.
pub const ULAW_TO_ALAW: [u8; 256] = build_ulaw_to_alaw();
/// Every A-law code (index) converted to µ-law by G.711 Table 4.
pub const ALAW_TO_ULAW: [u8; 256] = build_alaw_to_ulaw();

const fn build_ulaw_to_alaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        let plain = !(code as u8);
        let negative = plain & 0x80 != 0;
        let number = ULAW_TO_ALAW_NUMBER[(plain & 0x7F) as usize];
        let sign = if negative { 0x00 } else { 0x80 };
        table[code] = (sign | (number - 1)) ^ 0x55;
        code += 1;
    }
    table
}

const fn build_alaw_to_ulaw() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        let plain = (code as u8) ^ 0x55;
        let positive = plain & 0x80 != 0;
        let number = ALAW_TO_ULAW_NUMBER[(plain & 0x7F) as usize];
        let sign = if positive { 0x00 } else { 0x80 };
        table[code] = !(sign | (number - 1));
        code += 1;
    }
    table
}

/// Converts a µ-law payload to A-law into `out` (same length as `input`).
pub fn ulaw_to_alaw_into(input: &[u8], out: &mut [u8]) {
    for (o, i) in out.iter_mut().zip(input) {
        *o = ULAW_TO_ALAW[usize::from(*i)];
    }
}

/// Converts an A-law payload to µ-law into `out` (same length as `input`).
pub fn alaw_to_ulaw_into(input: &[u8], out: &mut [u8]) {
    for (o, i) in out.iter_mut().zip(input) {
        *o = ALAW_TO_ULAW[usize::from(*i)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_known_values() {
        // Silence codes and the extremes of the 14-bit range.
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32_124);
        assert_eq!(ulaw_to_linear(0x00), -32_124);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0xEF), 132); // segment 1 starts at 33 in 14-bit units
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32_256);
        assert_eq!(alaw_to_linear(0x2A), -32_256);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn decode_then_encode_is_identity() {
        for code in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(code)), code, "A-law {code:#04x}");
            let back = linear_to_ulaw(ulaw_to_linear(code));
            // µ-law has two zeros (0xFF and 0x7F); both decode to 0 which encodes as 0xFF.
            let want = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, want, "µ-law {code:#04x}");
        }
    }

    #[test]
    fn encoders_are_monotonic() {
        let mut last_u = ulaw_to_linear(linear_to_ulaw(i16::MIN));
        let mut last_a = alaw_to_linear(linear_to_alaw(i16::MIN));
        for x in i16::MIN..=i16::MAX {
            let u = ulaw_to_linear(linear_to_ulaw(x));
            let a = alaw_to_linear(linear_to_alaw(x));
            assert!(u >= last_u && a >= last_a, "at {x}");
            last_u = u;
            last_a = a;
        }
    }

    #[test]
    fn conversion_tables_match_g711() {
        // Byte values of G.711 Tables 3/4 at the extremes and at the rows
        // where the tables depart from decode-then-encode.
        assert_eq!(ULAW_TO_ALAW[0x00], 0x2A);
        assert_eq!(ULAW_TO_ALAW[0x80], 0xAA);
        assert_eq!(ULAW_TO_ALAW[0xFF], 0xD5);
        assert_eq!(ULAW_TO_ALAW[0x7F], 0x55);
        assert_eq!(ULAW_TO_ALAW[47], 26);
        assert_eq!(ULAW_TO_ALAW[78], 122);
        assert_eq!(ULAW_TO_ALAW[79], 120);
        assert_eq!(ULAW_TO_ALAW[175], 154);
        assert_eq!(ALAW_TO_ULAW[0x00], 42);
        assert_eq!(ALAW_TO_ULAW[0x55], 0x7E);
        assert_eq!(ALAW_TO_ULAW[0xD5], 0xFE);
        assert_eq!(ALAW_TO_ULAW[72], 93);
        assert_eq!(ALAW_TO_ULAW[73], 93);
        assert_eq!(ALAW_TO_ULAW[106], 63);
        assert_eq!(ALAW_TO_ULAW[107], 63);
        assert_eq!(ALAW_TO_ULAW[255], 209);
    }

    #[test]
    fn conversion_keeps_sign_and_level() {
        for code in 0..=255u8 {
            let from_u = f64::from(ulaw_to_linear(code));
            let to_a = f64::from(alaw_to_linear(ULAW_TO_ALAW[usize::from(code)]));
            assert!(from_u * to_a >= 0.0, "µ {code:#04x} changed sign");
            // One A-law step at most (steps double per segment, 3.2% of level + 16).
            assert!((from_u - to_a).abs() <= from_u.abs() * 0.07 + 16.0, "µ {code:#04x}");
            let from_a = f64::from(alaw_to_linear(code));
            let to_u = f64::from(ulaw_to_linear(ALAW_TO_ULAW[usize::from(code)]));
            assert!(from_a * to_u > 0.0, "A {code:#04x} changed sign");
            assert!((from_a - to_u).abs() <= from_a.abs() * 0.07 + 16.0, "A {code:#04x}");
        }
    }

    #[test]
    fn alaw_through_ulaw_round_trip() {
        // A -> µ -> A is transparent except where Table 4 merges two A-law
        // numbers into one µ-law number: there it lands on the neighbour.
        let mut exact = 0;
        for code in 0..=255u8 {
            let back = ULAW_TO_ALAW[usize::from(ALAW_TO_ULAW[usize::from(code)])];
            if back == code {
                exact += 1;
                continue;
            }
            let (a, b) = (code ^ 0x55, back ^ 0x55);
            assert_eq!(a & 0x80, b & 0x80, "A {code:#04x} changed sign");
            assert_eq!((a & 0x7F).abs_diff(b & 0x7F), 1, "A {code:#04x} -> {back:#04x}");
        }
        assert_eq!(exact, 240);
    }

    #[test]
    fn payload_conversion_uses_tables() {
        let input: Vec<u8> = (0..=255).collect();
        let mut out = vec![0; 256];
        ulaw_to_alaw_into(&input, &mut out);
        assert_eq!(out, ULAW_TO_ALAW);
        alaw_to_ulaw_into(&input, &mut out);
        assert_eq!(out, ALAW_TO_ULAW);
    }
}
