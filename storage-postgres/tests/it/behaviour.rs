//! The domain's behaviour suite on PostgreSQL: the same service-level cases
//! the in-memory store passes, each on a fresh database.

billing_domain::behaviour_suite!(super::db::suite_store);
