//! A record's value as read from the log: an encoded event envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        alliance_fuzz::reference();
    },
    |data: &[u8]| alliance_fuzz::envelope(data)
);
