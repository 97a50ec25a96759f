//! Random bytes into the JSON decoder: never a panic, never unbounded allocation
//! (run with `-rss_limit_mb`/`-malloc_limit_mb`), a failed message never leaves a
//! partial row.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut decoder = common::decoder();
    let mut block = decoder.new_block();
    // The same bytes twice, so a failure after a success is checked against a block
    // that already holds a row.
    common::check(&mut decoder, &mut block, data);
    common::check(&mut decoder, &mut block, data);
});
