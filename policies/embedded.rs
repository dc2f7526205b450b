// The shipped policy pack, compiled in: every `*.cedar` file of this directory concatenated
// in name order, the schema and the entities. Included by path (`#[path]`) by the host (the
// `writ` defaults) and the proxy-wasm filter (which reads no files), which share no crate.
// `writ-filter`'s tests check that every `*.cedar` file here is listed.

/// Every `*.cedar` file of the pack, concatenated in name order.
pub const POLICIES: &str = concat!(
    include_str!("breakglass.cedar"),
    "\n",
    include_str!("data.cedar"),
    "\n",
    include_str!("delegation.cedar"),
    "\n",
    include_str!("payroll.cedar"),
    "\n",
    include_str!("revocation.cedar"),
    "\n",
    include_str!("tools.cedar"),
);
pub const SCHEMA: &str = include_str!("writ.cedarschema");
pub const ENTITIES: &str = include_str!("entities.json");
