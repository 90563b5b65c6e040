//! wire::parse, error_response and StreamDecoder on arbitrary bytes: no panic, and whatever
//! parses must survive serialization unchanged.
#![no_main]
use holdfast_sip::wire::{self, StreamDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match wire::parse(data) {
        Ok(message) => assert_eq!(wire::parse(&message.to_bytes().unwrap()).as_ref(), Ok(&message)),
        Err(error) => {
            if let Some(answer) = wire::error_response(data, &error) {
                let _ = answer.to_bytes();
            }
        }
    }
    // The first byte picks how the stream is cut into reads.
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut decoder = StreamDecoder::with_max_message(4096);
    for piece in data.chunks(chunk) {
        decoder.push(piece);
        while let Some(item) = decoder.next() {
            if let Err(error) = item {
                let _ = wire::error_response(decoder.last_rejected(), &error);
            }
        }
    }
});
