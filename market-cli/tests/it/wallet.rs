//! `pedals wallet`: keystores created, imported, listed and opened as a user does, with the
//! key never on stdout and the files private to their owner.

use std::{path::Path, process::Command};

fn pedals(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pedals"));
    cmd.env("PEDALS_KEYSTORE_DIR", dir)
        .env("PEDALS_LOG", "warn")
        .env_remove("PEDALS_PASSWORD");
    cmd
}

/// `pedals wallet <args> --password-file <password>`.
fn wallet(dir: &Path, args: &[&str], password: &Path) -> std::process::Output {
    pedals(dir)
        .arg("wallet")
        .args(args)
        .arg("--password-file")
        .arg(password)
        .output()
        .expect("runs")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn a_wallet_is_created_imported_listed_and_opened_and_its_key_never_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2\n").expect("password");
    let created = json(
        &pedals(dir.path())
            .args([
                "wallet",
                "new",
                "--name",
                "provider",
                "--json",
                "--password-file",
            ])
            .arg(&password)
            .output()
            .expect("runs"),
    );
    let address = created["address"].as_str().expect("address").to_string();
    let file = dir.path().join("provider.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("keystore")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "keystore mode {mode:o}");
    }
    let opened = json(
        &pedals(dir.path())
            .args([
                "wallet",
                "address",
                "--name",
                "provider",
                "--json",
                "--password-file",
            ])
            .arg(&password)
            .output()
            .expect("runs"),
    );
    assert_eq!(opened["address"], address.as_str());

    // Anvil's first dev key, imported from a file: the known address, the key not echoed.
    let key = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, format!("0x{key}\n")).expect("key");
    let out = wallet(
        dir.path(),
        &[
            "import",
            "--name",
            "dev0",
            "--private-key-file",
            key_file.to_str().expect("utf8"),
        ],
        &password,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        stdout.contains("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
        "{stdout}"
    );
    assert!(!stdout.contains(key), "the key was printed");

    let listed = json(
        &pedals(dir.path())
            .args(["wallet", "list", "--json"])
            .output()
            .expect("runs"),
    );
    assert_eq!(listed["keystores"], serde_json::json!(["dev0", "provider"]));
}

#[test]
fn mistakes_are_refused_with_a_message_that_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("password");
    std::fs::write(&password, "right").expect("password");
    let ok = wallet(dir.path(), &["new", "--name", "a"], &password);
    assert!(ok.status.success());
    let stderr = |out: std::process::Output| {
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let again = wallet(dir.path(), &["new", "--name", "a"], &password);
    assert!(stderr(again).contains("nothing was overwritten"));

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "wrong").expect("password");
    let out = wallet(dir.path(), &["address", "--name", "a"], &wrong);
    assert!(stderr(out).contains("wrong password"));

    let bad_key = dir.path().join("bad.txt");
    std::fs::write(&bad_key, "0x1234").expect("key");
    let out = wallet(
        dir.path(),
        &[
            "import",
            "--name",
            "b",
            "--private-key-file",
            bad_key.to_str().expect("utf8"),
        ],
        &password,
    );
    assert!(stderr(out).contains("32 bytes of hex"));

    let out = wallet(dir.path(), &["new", "--name", "../escape"], &password);
    assert!(stderr(out).contains("use letters, digits"));
}
