//! `itlsim serve`: every service of every node of a cluster file on the network (issue 4).
//! The work is in `itlsim_net::serve`; this only maps arguments.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use itlsim_net::serve::{PortMode, ServeConfig, init_logging, serve_file_with_imports};

#[derive(Args)]
pub struct ServeArgs {
    /// Cluster file (YAML): the `clusters:` section of a scenario, optional `fleet:` for phones.
    #[arg(long)]
    cluster: PathBuf,
    /// Address every listener binds. Anything but loopback prints a warning (TEST-ONLY keys).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// CUCM ports 69/2445/6970/6971/6972 (privileged; one node per address). Default: standard +
    /// 10000 + 10 per node (10069, 12445, 16970-16972, then 10079, 12455 ...).
    #[arg(long)]
    standard_ports: bool,
    /// Override one port: HOST.SERVICE=PORT, SERVICE = tftp|tvs|http|https6971|https6972.
    #[arg(long = "port-map", value_name = "HOST.SERVICE=PORT")]
    port_map: Vec<String>,
    /// Load a real cluster's certificates: DIR/<cluster>/<node>/<purpose>.pem (PKCS#8 key +
    /// certificate) and DIR/<cluster>/trust/<store>/*.pem. The files served are then signed with
    /// those keys (to reproduce a reported ITL).
    #[arg(long, value_name = "DIR")]
    import_certs: Option<PathBuf>,
}

pub fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let mut config = ServeConfig {
        bind: a.bind,
        mode: if a.standard_ports {
            PortMode::Standard
        } else {
            PortMode::Unprivileged
        },
        ..ServeConfig::default()
    };
    let result = a
        .port_map
        .iter()
        .try_for_each(|e| config.add_port_map(e))
        .and_then(|()| serve_file_with_imports(&a.cluster, a.import_certs.as_deref(), config));
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("itlsim serve: {e}");
            Ok(ExitCode::from(e.exit_code()))
        }
    }
}
