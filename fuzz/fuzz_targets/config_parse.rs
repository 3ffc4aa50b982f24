//! Config text: parsing and validation never panic; errors are messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) =
            steemgate::config::Config::from_yaml(text, std::path::Path::new("/nonexistent"))
        {
            assert!(!e.to_string().is_empty());
        }
    }
});
