//! A `PlanCommands` request: selector byte, then the request's protobuf encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // Load the reference plan before the first input, so a broken setup fails at once.
        alliance_fuzz::reference();
    },
    |data: &[u8]| alliance_fuzz::command(data)
);
