//! The outbound URL guard on arbitrary URLs: never a panic, and an IP
//! literal it lets through is never a refused address.
#![no_main]

use std::net::IpAddr;

use hookrun_core::outbound::{is_forbidden, OutboundPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let policy = OutboundPolicy {
        allow_http: data.first().is_some_and(|b| b & 1 == 1),
        ..Default::default()
    };
    if let Ok(url) = policy.check_url(&raw) {
        let host = url.host_str().unwrap_or("");
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            assert!(!is_forbidden(ip), "{raw} was let through to {ip}");
        }
    }
    if data.len() == 16 {
        let mut b = [0u8; 16];
        b.copy_from_slice(data);
        let _ = is_forbidden(IpAddr::from(b));
    }
    if data.len() == 4 {
        let _ = is_forbidden(IpAddr::from([data[0], data[1], data[2], data[3]]));
    }
});
