//! DAHDI ioctl declarations (include/dahdi/user.h, type 0xDA).
//!
//! Integer ioctls take a pointer to `int`: the kernel uses get_user/put_user on the argument.

use std::os::raw::c_int;

use crate::structs::{BufferInfo, ChanConfig, LineConfig, Params, SpanInfo};

const DAHDI_CODE: u8 = 0xDA;

/// Declares the nix ioctl function and a constant with its request code, from the same numbers.
macro_rules! dahdi_ioctl {
    (read $name:ident, $code:ident, $nr:expr, $ty:ty) => {
        nix::ioctl_read!($name, DAHDI_CODE, $nr, $ty);
        pub const $code: nix::sys::ioctl::ioctl_num_type =
            nix::request_code_read!(DAHDI_CODE, $nr, std::mem::size_of::<$ty>());
    };
    (write $name:ident, $code:ident, $nr:expr, $ty:ty) => {
        nix::ioctl_write_ptr!($name, DAHDI_CODE, $nr, $ty);
        pub const $code: nix::sys::ioctl::ioctl_num_type =
            nix::request_code_write!(DAHDI_CODE, $nr, std::mem::size_of::<$ty>());
    };
    (readwrite $name:ident, $code:ident, $nr:expr, $ty:ty) => {
        nix::ioctl_readwrite!($name, DAHDI_CODE, $nr, $ty);
        pub const $code: nix::sys::ioctl::ioctl_num_type =
            nix::request_code_readwrite!(DAHDI_CODE, $nr, std::mem::size_of::<$ty>());
    };
}

dahdi_ioctl!(read get_blocksize, GET_BLOCKSIZE, 1, c_int);
dahdi_ioctl!(write set_blocksize, SET_BLOCKSIZE, 1, c_int);
dahdi_ioctl!(write flush, FLUSH, 3, c_int);
dahdi_ioctl!(readwrite get_params, GET_PARAMS, 5, Params);
dahdi_ioctl!(read get_event, GETEVENT, 8, c_int);
dahdi_ioctl!(readwrite span_stat, SPANSTAT, 10, SpanInfo);
dahdi_ioctl!(write span_config, SPANCONFIG, 18, LineConfig);
dahdi_ioctl!(write chan_config, CHANCONFIG, 19, ChanConfig);
dahdi_ioctl!(read get_bufinfo, GET_BUFINFO, 27, BufferInfo);
dahdi_ioctl!(write set_bufinfo, SET_BUFINFO, 27, BufferInfo);
dahdi_ioctl!(read channo, CHANNO, 34, c_int);
dahdi_ioctl!(write specify, SPECIFY, 38, c_int);
dahdi_ioctl!(write set_law, SETLAW, 39, c_int);
dahdi_ioctl!(write startup, STARTUP, 99, c_int);

/// DAHDI_FLUSH argument: read and write buffers and the event queue.
pub const FLUSH_ALL: c_int = 7;

/// DAHDI_SPANCONFIG `lineconfig` bits: framing (D4, ESF for T1; CCS for ISDN, with CRC4 on E1)
/// and line coding (AMI; B8ZS on T1, HDB3 on E1).
pub const CONFIG_D4: c_int = 1 << 4;
pub const CONFIG_ESF: c_int = 1 << 5;
pub const CONFIG_AMI: c_int = 1 << 6;
pub const CONFIG_B8ZS: c_int = 1 << 7;
pub const CONFIG_CCS: c_int = 1 << 8;
pub const CONFIG_HDB3: c_int = 1 << 9;
pub const CONFIG_CRC4: c_int = 1 << 10;

/// DAHDI_CHANCONFIG signalling: clear channel (B-channel audio), and HDLC with the FCS computed
/// by DAHDI (a D-channel).
pub const SIG_CLEAR: c_int = 1 << 7;
pub const SIG_HDLCFCS: c_int = (1 << 9) | (1 << 8) | SIG_CLEAR;

/// DAHDI_GET_PARAMS: the channel's master is returned in the high 16 bits of `channo`.
pub const GET_PARAMS_RETURN_MASTER: c_int = 0x4000_0000;

#[cfg(test)]
mod tests {
    use super::*;

    // Values from shared/conformance/dahdi-ioctls.md (generic _IOC encoding).
    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", target_arch = "arm", target_arch = "riscv64"))]
    fn request_codes_match_the_table() {
        // ioctl_num_type is c_ulong on glibc and c_int on musl: compare the 32 bits.
        let table: [(&str, u32, u32); 14] = [
            ("DAHDI_GET_BLOCKSIZE", GET_BLOCKSIZE as u32, 0x8004DA01),
            ("DAHDI_SET_BLOCKSIZE", SET_BLOCKSIZE as u32, 0x4004DA01),
            ("DAHDI_FLUSH", FLUSH as u32, 0x4004DA03),
            ("DAHDI_GET_PARAMS", GET_PARAMS as u32, 0xC088DA05),
            ("DAHDI_GETEVENT", GETEVENT as u32, 0x8004DA08),
            ("DAHDI_SPANSTAT", SPANSTAT as u32, 0xC13ADA0A),
            ("DAHDI_SPANCONFIG", SPANCONFIG as u32, 0x4024DA12),
            ("DAHDI_CHANCONFIG", CHANCONFIG as u32, 0x404CDA13),
            ("DAHDI_GET_BUFINFO", GET_BUFINFO as u32, 0x8018DA1B),
            ("DAHDI_SET_BUFINFO", SET_BUFINFO as u32, 0x4018DA1B),
            ("DAHDI_CHANNO", CHANNO as u32, 0x8004DA22),
            ("DAHDI_SPECIFY", SPECIFY as u32, 0x4004DA26),
            ("DAHDI_SETLAW", SETLAW as u32, 0x4004DA27),
            ("DAHDI_STARTUP", STARTUP as u32, 0x4004DA63),
        ];
        for (name, ours, theirs) in table {
            assert_eq!(ours, theirs, "{name}: {ours:#x} != {theirs:#x}");
        }
    }
}
