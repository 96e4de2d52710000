//! The scheduler's tables on SQLite.

use steward_store::schedule::{ScheduleRead, ScheduleWrite};

use crate::conn::Conn;

impl ScheduleRead for Conn<'_> {}

impl ScheduleWrite for Conn<'_> {}
