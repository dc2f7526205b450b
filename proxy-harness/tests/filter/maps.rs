//! The proxy-wasm map encoding the harness hands the filter (header maps, callout headers).

use writ_proxy_harness::{deserialize_map, serialize_map};

#[test]
fn maps_round_trip_in_the_abi_encoding() {
    let pairs = vec![(":path".to_string(), b"/a".to_vec()), ("x".to_string(), Vec::new())];
    let bytes = serialize_map(&pairs);
    assert_eq!(&bytes[..4], &2u32.to_le_bytes());
    assert_eq!(deserialize_map(&bytes).unwrap(), pairs);
    assert!(deserialize_map(&bytes[..bytes.len() - 3]).is_none());
    assert!(deserialize_map(&[9, 0, 0, 0]).is_none());
}
