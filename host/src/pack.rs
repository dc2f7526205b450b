//! The shipped policy pack (`policies/`), embedded so `writ` has built-in defaults.

/// Every `*.cedar` file of the pack, concatenated in name order.
pub const POLICIES: &str = concat!(
    include_str!("../../policies/breakglass.cedar"),
    "\n",
    include_str!("../../policies/data.cedar"),
    "\n",
    include_str!("../../policies/delegation.cedar"),
    "\n",
    include_str!("../../policies/payroll.cedar"),
    "\n",
    include_str!("../../policies/tools.cedar"),
);
pub const SCHEMA: &str = include_str!("../../policies/writ.cedarschema");
pub const ENTITIES: &str = include_str!("../../policies/entities.json");
