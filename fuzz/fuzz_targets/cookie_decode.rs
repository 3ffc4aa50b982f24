//! Cookie headers from the network: decoding never panics, and only a value
//! this codec signed can yield a session id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steemgate::auth::cookie::CookieCodec;

fuzz_target!(|data: &[u8]| {
    let codec = CookieCodec::new(&["fuzzing-secret-fuzzing-secret-0123456789"]);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(id) = codec.decode(text) {
            // Only a value exactly as the codec writes it can verify.
            assert_eq!(codec.encode(&id), text);
        }
    }
});
