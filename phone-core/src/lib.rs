//! Sans-IO simulated Cisco IP phone (issue 5). Not yet implemented: this crate only reserves the
//! place in the workspace.
#![forbid(unsafe_code)]
