//! `--source` and `--machine`: which database a view reads.

use chronicle::config::Config;
use chronicle::team::read::Team;

/// Read the team database instead of this machine's.
#[derive(clap::Args, Clone, Default)]
pub struct SourceArgs {
    /// Read the team database instead of this machine's: a postgresql:// URL, or `team` for
    /// `[sync] url` (rows then carry their machine)
    #[arg(long, value_name = "URL|team")]
    pub source: Option<String>,
    /// Only this machine's rows (with --source)
    #[arg(long, value_name = "NAME", requires = "source")]
    pub machine: Option<String>,
}

/// The team database when `--source` names one; `None` means this machine's file.
pub fn team(config: &Config, args: &SourceArgs) -> anyhow::Result<Option<Team>> {
    let Some(source) = &args.source else { return Ok(None) };
    let url = if source == "team" {
        match config.sync_url() {
            Some(u) => u,
            None => anyhow::bail!("--source team needs [sync] url in config.toml (or CHRONICLE_SYNC_URL)"),
        }
    } else {
        source.clone()
    };
    let target = super::sync::target(config, Some(&url))?;
    let client = target.connect()?;
    let mut team = Team::new(client, &target.shown, args.machine.clone());
    team.check_schema()?;
    Ok(Some(team))
}
