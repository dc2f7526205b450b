//! Policy, schema and entities loading, then one decision under whatever loaded.

use crate::fixtures::{NOW, decode, holder, read_doc};

/// One input.
pub fn run(data: &[u8]) {
    let parts = decode(data, 3);
    let text = |i: usize| parts.get(i).map(|p| String::from_utf8_lossy(p).into_owned()).filter(|t| !t.is_empty());
    let (policies, schema, entities) = (text(0).unwrap_or_default(), text(1), text(2));
    let mut engine = writ_core::Writ::default();
    if let Ok(n) = engine.set_policies(&policies, schema.as_deref(), entities.as_deref()) {
        assert_eq!(n as usize, engine.policies().map_or(0, |p| p.len()));
        // Whatever loaded decides, and decides the same way twice.
        let d = engine.check(&holder(), &read_doc(), NOW);
        assert_eq!(d, engine.check(&holder(), &read_doc(), NOW));
        if !d.allow {
            assert_eq!(d.max_ttl_secs, 0);
        }
    }
}
