//! Holdfast's SQLite store: users (HA1 digests only), registrar bindings, call records.
//!
//! `store` opens the database (WAL, synchronous=FULL, migrations), `users` and `bindings` read
//! and write their tables, `writer` is the group-commit task through which the registrar makes
//! bindings durable before it answers 200 OK. `admin` keeps the web admin's password (Argon2).
//! sba-web opens the database read-only (`Store::open_read_only`).
#![forbid(unsafe_code)]
mod admin;
mod batch;
mod bindings;
mod cdr;
pub mod cdr_text;
mod cdr_writer;
mod error;
mod ha1;
mod secrets;
mod store;
mod users;
mod writer;

pub use admin::verify_admin_password;
pub use bindings::{Binding, BindingOp, Origin};
pub use cdr::{Cdr, StoredCdr};
pub use cdr_writer::{CdrWriter, CdrWriterStats, CdrWriterStopped};
pub use error::StoreError;
pub use ha1::HashAlgorithm;
pub use store::Store;
pub use users::{Secret, UserName, UserRecord};
pub use writer::{BindingWriter, WriterStats};
