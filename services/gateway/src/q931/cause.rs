//! Q.850 cause values used by the call control.

pub const UNALLOCATED_NUMBER: u8 = 1;
pub const CHANNEL_UNACCEPTABLE: u8 = 6;
pub const NORMAL_CLEARING: u8 = 16;
pub const USER_BUSY: u8 = 17;
pub const NO_USER_RESPONDING: u8 = 18;
pub const NO_ANSWER: u8 = 19;
pub const CALL_REJECTED: u8 = 21;
pub const DESTINATION_OUT_OF_ORDER: u8 = 27;
pub const NORMAL_UNSPECIFIED: u8 = 31;
pub const INVALID_NUMBER_FORMAT: u8 = 28;
pub const NO_CIRCUIT_AVAILABLE: u8 = 34;
pub const NETWORK_OUT_OF_ORDER: u8 = 38;
pub const TEMPORARY_FAILURE: u8 = 41;
pub const CHANNEL_NOT_AVAILABLE: u8 = 44;
pub const CHANNEL_DOES_NOT_EXIST: u8 = 82;
pub const INVALID_CALL_REFERENCE: u8 = 81;
pub const MANDATORY_IE_MISSING: u8 = 96;
pub const MESSAGE_TYPE_NONEXISTENT: u8 = 97;
pub const WRONG_MESSAGE_FOR_STATE: u8 = 101;
pub const RECOVERY_ON_TIMER_EXPIRY: u8 = 102;
pub const INTERWORKING: u8 = 127;
/// Cause sent in STATUS answering a STATUS ENQUIRY.
pub const RESPONSE_TO_STATUS_ENQUIRY: u8 = 30;
