//! `search`: entries ranked by how well a term matches what the user remembers of them.

use crate::ctx::{Ctx, Exit, emit, unexpected};
use crate::output::{Table, json_line};
use clap::Args;
use jeton::Result;
use jeton::find::Hit;
use jeton::request::{Request, Response};
use serde_json::json;

/// `search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// What to look for in names, urls, usernames, tags, scopes and notes (any case; letters in
    /// order are enough: `ghub` finds `github/ci-deploy`); several words must all match
    #[arg(required = true, value_name = "WORD")]
    pub term: Vec<String>,
    /// Search revoked tombstones too
    #[arg(long)]
    pub all: bool,
}

pub fn search(ctx: &Ctx, a: SearchArgs) -> Result<Exit> {
    let request = Request::Search {
        term: a.term.join(" "),
        include_revoked: a.all,
    };
    let Response::Found(hits) = ctx.run(request)? else {
        return Err(unexpected());
    };
    if ctx.json {
        emit(json_line(&hits_json(&hits)).as_bytes())?;
    } else if !hits.is_empty() {
        emit(hits_text(&hits).as_bytes())?;
    } else {
        ctx.say_nothing_found(None)?;
    }
    Ok(Exit::Ok)
}

fn hits_json(hits: &[Hit]) -> serde_json::Value {
    hits.iter()
        .map(|h| {
            json!({
                "name": h.name,
                "status": h.status,
                "score": h.score,
                "matched": h.matched,
                "url": h.url,
                "username": h.username,
                "tags": h.tags,
                "scopes": h.scopes,
            })
        })
        .collect()
}

fn hits_text(hits: &[Hit]) -> String {
    let mut table = Table::new(&["NAME", "STATUS", "MATCHED", "URL", "USERNAME"]);
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for h in hits {
        table.row([
            h.name.clone(),
            h.status.clone(),
            h.matched.join(","),
            or_dash(&h.url),
            or_dash(&h.username),
        ]);
    }
    table.render()
}
