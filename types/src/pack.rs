//! The shipped policy pack (`policies/` at the repository root), compiled in: every `*.cedar`
//! file concatenated in name order, the schema and the entities. The built-in defaults of
//! `writ`, `writ serve`, the simulator and the proxy-wasm filter (which reads no files).
//! A test checks that every `*.cedar` file of `policies/` is listed here.

/// The pack's policy files, by name, in name order.
pub const POLICY_FILES: [(&str, &str); 7] = [
    ("breakglass.cedar", include_str!("../../policies/breakglass.cedar")),
    ("data.cedar", include_str!("../../policies/data.cedar")),
    ("delegation.cedar", include_str!("../../policies/delegation.cedar")),
    ("payroll.cedar", include_str!("../../policies/payroll.cedar")),
    ("revocation.cedar", include_str!("../../policies/revocation.cedar")),
    ("tasks.cedar", include_str!("../../policies/tasks.cedar")),
    ("tools.cedar", include_str!("../../policies/tools.cedar")),
];

/// Every `*.cedar` file of the pack, concatenated in name order (one newline between files).
pub const POLICIES: &str = concat!(
    include_str!("../../policies/breakglass.cedar"),
    "\n",
    include_str!("../../policies/data.cedar"),
    "\n",
    include_str!("../../policies/delegation.cedar"),
    "\n",
    include_str!("../../policies/payroll.cedar"),
    "\n",
    include_str!("../../policies/revocation.cedar"),
    "\n",
    include_str!("../../policies/tasks.cedar"),
    "\n",
    include_str!("../../policies/tools.cedar"),
);

/// The pack's Cedar schema.
pub const SCHEMA: &str = include_str!("../../policies/writ.cedarschema");

/// The pack's entities (Cedar entities JSON).
pub const ENTITIES: &str = include_str!("../../policies/entities.json");

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_cedar_file_of_the_pack_is_compiled_in_in_name_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cedar"))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = POLICY_FILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, listed);
        let joined: Vec<&str> = POLICY_FILES.iter().map(|(_, text)| *text).collect();
        assert_eq!(POLICIES, joined.join("\n"));
        for (name, text) in POLICY_FILES {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), text);
        }
    }
}
