//! `scsync login` and `scsync logout`.

use std::sync::Arc;

use crate::api::{self, ApiWriter, LoginOptions};
use crate::cli::{GlobalArgs, LoginArgs};
use crate::manifest;
use crate::state::TokenKind;

use super::session::{StoredTokens, api_config, open_store};
use super::{Result, Status};

pub async fn login(global: &GlobalArgs, args: &LoginArgs) -> Result<Status> {
    let manifest = manifest::load(&global.config)?;
    let config = api_config(&manifest.account.credentials()?)?;
    let store = Arc::new(open_store(global)?);
    let tokens = StoredTokens(store.clone());
    let options = LoginOptions {
        open_browser: !args.no_browser,
        read_pasted_url: true,
    };
    let mut out = std::io::stdout();
    api::login(config, &tokens, options, &mut out).await?;
    outln!(
        "Signed in. Tokens are stored in {}.",
        store.path().display()
    );
    Ok(Status::Success)
}

pub async fn logout(global: &GlobalArgs) -> Result<Status> {
    let manifest = manifest::load(&global.config)?;
    let config = api_config(&manifest.account.credentials()?)?;
    let store = Arc::new(open_store(global)?);
    if store.load_tokens(TokenKind::User)?.is_some() {
        let api = ApiWriter::new(config, Arc::new(StoredTokens(store.clone())))?;
        if let Err(error) = api.sign_out().await {
            // The local tokens go regardless: the user asked to forget them.
            tracing::warn!("the service did not confirm the sign-out: {error}");
        }
    }
    store.clear_tokens(TokenKind::User)?;
    store.clear_tokens(TokenKind::ClientCredentials)?;
    outln!(
        "Signed out; tokens removed from {}.",
        store.path().display()
    );
    Ok(Status::Success)
}
