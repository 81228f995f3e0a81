//! SASL authentication to libvirt: Lago's `libvirt_user` /
//! `libvirt_password` (`--libvirt-user`, `--libvirt-password`,
//! `LAGO_LIBVIRT_USER`, ...) answer libvirt's credential questions when the
//! daemon asks for them (`auth_tcp = "sasl"`, `auth_unix_rw = "sasl"`).
//! Without either key the connection is opened as before, with no callback.

use std::sync::Mutex;

use virt::connect::{Connect, ConnectAuth, ConnectCredential, ConnectCredentialType};

/// The user name and password given to libvirt. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The SASL user (libvirt's `AUTHNAME`/`USERNAME`); unset: libvirt's
    /// default (the local user name).
    pub user: Option<String>,
    /// The SASL password (libvirt's `PASSPHRASE`).
    pub password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// What the callback answers with: virt's callback is a plain `fn`, so the
/// credentials of the connection being opened live here.
static ANSWERS: Mutex<Option<Credentials>> = Mutex::new(None);

// The signature is virt's `ConnectAuthCallback`.
#[allow(clippy::ptr_arg)]
fn answer(creds: &mut Vec<ConnectCredential>) {
    let answers = ANSWERS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let answers = answers.unwrap_or_default();
    for cred in creds.iter_mut() {
        let given = match cred.typed {
            ConnectCredentialType::AuthName | ConnectCredentialType::UserName => {
                answers.user.clone()
            }
            ConnectCredentialType::Passphrase | ConnectCredentialType::NoEchoPrompt => {
                answers.password.clone()
            }
            _ => None,
        };
        cred.result = Some(given.unwrap_or_else(|| cred.def_result.clone()));
    }
}

/// Opens `url`, answering SASL questions with `creds` when there are any.
pub fn open(url: &str, creds: &Credentials) -> Result<Connect, virt::error::Error> {
    if creds.user.is_none() && creds.password.is_none() {
        return Connect::open(Some(url));
    }
    *ANSWERS.lock().unwrap_or_else(|p| p.into_inner()) = Some(creds.clone());
    let mut auth = ConnectAuth::new(
        vec![
            ConnectCredentialType::AuthName,
            ConnectCredentialType::UserName,
            ConnectCredentialType::Passphrase,
        ],
        answer,
    );
    Connect::open_auth(Some(url), &mut auth, 0)
}
