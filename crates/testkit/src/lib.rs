//! Test harness for corsair: real headless browsers (Chromium, Firefox ESR) run `fetch()`
//! matrices from pages on several loopback origins against corsair-protected servers, and report
//! what scripts could see.
//!
//! - [`browser`]: finding, starting and stopping the browsers;
//! - [`pages`]: the page server that hands each origin its cases and collects the outcomes;
//! - [`matrix`]: the foundation's matrix of policies, requests and expected outcomes.

pub mod browser;
pub mod matrix;
pub mod pages;
pub mod scripted;

pub use browser::Browser;
pub use pages::{Case, Frame, PageServer, Run, Seen};
