//! kestrel-keeper: the jobs an operator runs against a Kestrel deployment.
//!
//! Today: [`audit`], the solvency check over fetched accounts. The cranks
//! (consume events, funding, liquidation) and the daemon arrive with the
//! instructions they call.
pub mod audit;
