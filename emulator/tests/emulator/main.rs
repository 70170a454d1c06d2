//! sc-emulator's integration tests: every endpoint over real HTTP, every
//! body checked against facts derived from the official OpenAPI spec.

mod common;
mod control;
mod faults;
mod oauth;
mod paging;
mod reads;
mod shapes;
mod social;
mod writes;
