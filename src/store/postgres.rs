//! The PostgreSQL store (work in progress).

use crate::error::{Result, TMinusError};

/// A store on a PostgreSQL server.
pub struct PgStore {}

impl PgStore {
    /// Connects to the server at `url`.
    pub fn connect(url: &str) -> Result<Self> {
        Err(TMinusError::Store(format!("PostgreSQL is not supported yet: {url}")))
    }
}

impl super::Store for PgStore {
    fn write(&mut self) -> Result<Box<dyn super::Tx + '_>> {
        Err(TMinusError::Store("PostgreSQL is not supported yet".into()))
    }
    fn read(&mut self) -> Result<Box<dyn super::Tx + '_>> {
        Err(TMinusError::Store("PostgreSQL is not supported yet".into()))
    }
    fn data_version(&mut self) -> Result<i64> {
        Ok(0)
    }
}
