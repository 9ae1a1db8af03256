//! The time Sluice records (history, manifests, locks, tokens) and who is acting.

/// Now, as recorded in Sluice's files: RFC 3339, UTC, whole seconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Who is acting when no `--actor` is given: `$USER` (or `$USERNAME`), else the
/// account the process runs as, from the system's user database (root in a container
/// often has no `$USER`), else its numeric id.
pub fn default_actor() -> String {
    if let Ok(user) = std::env::var("USER").or_else(|_| std::env::var("USERNAME"))
        && !user.trim().is_empty()
    {
        return user;
    }
    os_account().unwrap_or_else(|| "unknown".into())
}

/// The name of the account this process runs as, from `/etc/passwd` (what `getpwuid`
/// reads on a system without a directory service), or `uid N` when it has no entry.
fn os_account() -> Option<String> {
    let uid = process_uid()?;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

/// The real user id of this process, from `/proc/self/status` (Linux).
fn process_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_account_is_found_without_user() {
        // The test process runs as some account; it has a name or at least an id.
        let account = os_account().expect("a Linux process has a uid");
        assert!(!account.is_empty());
        assert_ne!(account, "unknown");
    }

    #[test]
    fn now_is_rfc3339_utc() {
        let t = now();
        assert!(t.ends_with('Z'), "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(&t).is_ok(), "{t}");
    }
}
