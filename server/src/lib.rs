//! Model of one or more CUCM clusters (issue 3). Not yet implemented: this crate only reserves the
//! place in the workspace.
#![forbid(unsafe_code)]
