//! `tenant-plane keys rotate`: re-seal every catalog secret under the newest
//! master key. Configure the new key after the old ones
//! (`TENANT_PLANE_MASTER_KEY=<old>,<new>`), run this, then drop the old key.

use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::control_audit::Actor;
use crate::embedded;
use crate::services::Services;

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-seal tenant role passwords, integration secrets and server admin
    /// passwords under the newest master key, in batches; safe to stop and
    /// run again.
    Rotate {
        /// Rows re-sealed per transaction.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
        batch: u16,
    },
}

pub async fn run(mut settings: Settings, args: KeysArgs) -> anyhow::Result<()> {
    embedded::resolve_for_cli(&mut settings)?;
    let services = Services::connect(&settings).await?;
    match args.command {
        KeysCommand::Rotate { batch } => {
            let actor = Actor::cli();
            let rekey = services
                .keys
                .rotate(&actor, i64::from(batch), |column, done| {
                    eprintln!("re-sealed {done} {}", column.as_str());
                });
            let report = rekey.await?;
            for (what, count) in &report.resealed {
                println!("{count:>8}  {what} re-sealed");
            }
            println!(
                "every secret is sealed under master key {}; older keys may now be removed \
                 (keep one while backups taken under it must still be read)",
                report.key_id
            );
        }
    }
    Ok(())
}
