//! `scsync plan`: show what apply would change. Only reads from the service.

use std::io::IsTerminal;

use crate::cli::{GlobalArgs, PlanArgs, PlanFormat};
use crate::plan::{Plan, diff, render};

use super::{CommandError, Result, Session, Status};

pub async fn run(global: &GlobalArgs, args: &PlanArgs) -> Result<Status> {
    let session = Session::open(global)?;
    let planned = session.plan().await?;
    let plan = &planned.plan;
    let text = match args.format {
        PlanFormat::Text => render::text(plan, color_stdout()),
        PlanFormat::Json => render::json(plan),
        PlanFormat::Markdown => render::markdown(plan),
    };
    out!("{}", with_newline(text));
    if let Some(out) = &args.out {
        save(plan, out)?;
    }
    diff::check_policy(plan, &session.manifest.policy)?;
    if args.detailed_exitcode && !plan.is_empty() {
        return Ok(Status::ChangesPending);
    }
    Ok(Status::Success)
}

/// Colour only on a terminal, and never when `NO_COLOR` is set.
pub fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn with_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn save(plan: &Plan, path: &std::path::Path) -> Result<()> {
    std::fs::write(path, with_newline(render::json(plan)))
        .map_err(|e| CommandError::io(format!("cannot write the plan to {}", path.display()), e))
}
