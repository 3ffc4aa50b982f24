//! Request paths and redirect targets: canonicalization never panics, its
//! output is a fixed point without dot segments or empty segments, and a
//! redirect target is always a local path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steemgate::proxy::path::canonicalize;
use steemgate::proxy::redirect::safe_redirect_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(canonical) = canonicalize(text) {
        assert!(canonical.starts_with('/'));
        assert!(!canonical.contains("//"));
        assert!(!canonical.split('/').any(|s| s == "." || s == ".."));
        assert_eq!(canonicalize(&canonical).as_deref(), Ok(canonical.as_str()));
    }
    let target = safe_redirect_target(text);
    assert!(target.starts_with('/'));
    assert!(!target.starts_with("//") && !target.starts_with("/\\"));
});
