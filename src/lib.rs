//! steemgate: a reverse-proxy authentication gateway for Steem and Hive accounts.
//!
//! A visitor proves an account by sending a tiny transfer with a one-time memo
//! to the gateway's account; the gateway watches the chain, binds the memo's
//! browser session to the sender, and forwards that browser's requests
//! upstream with `X-Steem-Account`.
//!
//! Layout: [`config`] (YAML in, validated values out), [`store`] (sessions,
//! challenges, chain cursor), [`chain`] (RPC, follower, devnet), [`auth`]
//! (cookie, memo), [`policy`] (who may enter, from chain facts), [`proxy`] (the pingora gateway), [`pages`] (HTML),
//! [`report`] (the stale-follows demo app), [`admin`] (health, metrics),
//! [`server`] (wiring it all into one process), [`reload`] (SIGHUP),
//! [`access_log`] (one line per request, written off the request path).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod access_log;
pub mod admin;
pub mod auth;
pub mod chain;
pub mod clock;
pub mod config;
pub mod demo;
pub mod hello;
pub mod logging;
pub mod oidc;
pub mod pages;
pub mod policy;
pub mod proxy;
pub mod random;
pub mod reload;
pub mod report;
pub mod server;
pub mod store;
