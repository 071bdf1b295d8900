//! Everything `run` refuses at start because of its configuration file, checked in one place
//! that `check-config` and `run` both use, so a file `check-config` passes is one `run` starts
//! with (short of the host changing in between: a port taken, a folder made unwritable).
//!
//! Two stages: the file itself ([`crate::config::load_str`]: syntax, ranges, references, the
//! ACD's rules) and the files it names that `run` reads before serving (the prompt folder).
//! Both report `file:line:column: field: message`.

use std::path::Path;

use crate::config::{self, Config, ConfigErrors};
use crate::prompt_library::PromptLibrary;

/// Reads `path` and checks everything `run` would refuse at start because of it.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigErrors::whole_file(&file, format!("cannot read file: {error}")))?;
    load_str(&file, &text)
}

/// [`load_file`] for `text` already read; `source_name` names it in errors.
pub fn load_str(source_name: &str, text: &str) -> Result<Config, ConfigErrors> {
    let config = config::load_str(source_name, text)?;
    // `run` loads the TLS certificates before it serves: a missing or broken file stops it.
    for (section, source) in [("sip", &config.sip.tls), ("http", &config.http.tls)] {
        if let Some(Err((field, message))) =
            source.as_ref().map(crate::tls_certificates::check_files)
        {
            return Err(config::error_at(
                source_name,
                text,
                &[section, field],
                message,
            ));
        }
    }
    // Our own client certificate, likewise, under its own key names.
    if let Some(Err((field, message))) = config
        .sip
        .tls_client_certificate
        .as_ref()
        .map(crate::tls_certificates::check_files)
    {
        let field = if field == "tls_cert" {
            "tls_client_cert"
        } else {
            "tls_client_key"
        };
        return Err(config::error_at(
            source_name,
            text,
            &["sip", field],
            message,
        ));
    }
    // The client CA file for mutual TLS and the extra CAs for outgoing TLS, likewise.
    for (field, path) in [
        ("tls_client_ca", &config.sip.tls_client_ca),
        ("tls_ca", &config.sip.tls_ca),
    ] {
        if let Some(Err(error)) = path.as_deref().map(transport::client_roots_from_pem_file) {
            return Err(config::error_at(
                source_name,
                text,
                &["sip", field],
                error.to_string(),
            ));
        }
    }
    // `run` reads the do-not-call list before it serves: a number it cannot read is one it
    // might dial.
    if let Some(Err(error)) = config
        .outbound
        .dnc_file
        .as_deref()
        .map(crate::do_not_call::load)
    {
        return Err(config::error_at(
            source_name,
            text,
            &["outbound", "dnc_file"],
            error,
        ));
    }
    // `run` loads every prompt set before it serves; an unreadable folder or a WAV file that
    // is not a usable prompt stops it, so it is a configuration error here too.
    let library = match PromptLibrary::load(
        config.media.prompts_dir.as_deref(),
        &crate::runtime::prompt_languages(&config),
    ) {
        Ok(library) => library,
        Err(error) => {
            return Err(config::error_at(
                source_name,
                text,
                &["media", "prompts_dir"],
                format!("{error:#}"),
            ))
        }
    };
    // A survey nobody can hear would only ever record "no score".
    for (index, queue) in config.queues.iter().enumerate() {
        let Some(survey) = &queue.survey else {
            continue;
        };
        if !library.contains(crate::prompt_library::DEFAULT_LANGUAGE, &survey.prompt) {
            return Err(config::queue_error_at(
                source_name,
                text,
                index,
                "survey_prompt",
                format!(
                    "prompt `{}` is neither in media.prompts_dir/{}/ nor built in: record it there",
                    survey.prompt,
                    crate::prompt_library::DEFAULT_LANGUAGE
                ),
            ));
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_prompt_folder_is_a_located_configuration_error() {
        let text = "[media]\nprompts_dir = \"/nonexistent/prompts\"\n";
        let errors = load_str("t.toml", text).expect_err("the folder does not exist");
        assert_eq!(
            errors.to_string(),
            "t.toml:2:15: media.prompts_dir: prompts folder /nonexistent/prompts does not exist or is not a folder"
        );
    }

    #[test]
    fn a_bad_do_not_call_file_is_a_located_configuration_error() {
        let errors = load_str(
            "t.toml",
            "[outbound]\ndnc_file = \"/nonexistent/dnc.txt\"\n",
        )
        .expect_err("the file does not exist");
        assert!(
            errors
                .to_string()
                .starts_with("t.toml:2:12: outbound.dnc_file: cannot read /nonexistent/dnc.txt"),
            "{errors}"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("dnc.txt");
        std::fs::write(&path, "2001\nnobody\n").expect("write");
        let text = format!("[outbound]\ndnc_file = \"{}\"\n", path.display());
        let errors = load_str("t.toml", &text).expect_err("line 2 is not a number");
        assert_eq!(
            errors.to_string(),
            format!(
                "t.toml:2:12: outbound.dnc_file: {}:2: \"nobody\" is not a number",
                path.display()
            )
        );
    }

    #[test]
    fn an_unusable_prompt_file_is_a_located_configuration_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("en")).expect("language folder");
        std::fs::write(dir.path().join("en").join("moh.wav"), b"not a wav").expect("write");
        let text = format!("[media]\nprompts_dir = \"{}\"\n", dir.path().display());
        let errors = load_str("t.toml", &text).expect_err("the prompt is not a WAV file");
        let line = errors.to_string();
        assert!(
            line.starts_with("t.toml:2:15: media.prompts_dir: loading prompt ")
                && line.contains("moh.wav"),
            "{line}"
        );
    }

    #[test]
    fn a_survey_prompt_that_exists_nowhere_is_a_located_configuration_error() {
        let queue = "[[queue]]\nname = \"q\"\nskills = { s = 1 }\nsurvey = \"1-5\"\n";
        let errors = load_str("t.toml", queue).expect_err("no `survey` prompt anywhere");
        assert_eq!(
            errors.to_string(),
            "t.toml:1:1: queue[0].survey_prompt: prompt `survey` is neither in media.prompts_dir/en/ nor built in: record it there"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("en")).expect("language folder");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../media/prompts/en/goodbye.wav"
            ),
            dir.path().join("en").join("survey.wav"),
        )
        .expect("copy a real prompt");
        let text = format!(
            "[media]\nprompts_dir = \"{}\"\n{queue}",
            dir.path().display()
        );
        let config = load_str("t.toml", &text).expect("the recorded survey prompt is found");
        assert!(config.queues[0].survey.is_some());
        // A built-in prompt will do too.
        let builtin = format!("{queue}survey_prompt = \"goodbye\"\n");
        assert!(load_str("t.toml", &builtin).is_ok());
    }

    #[test]
    fn a_file_the_loader_refuses_is_refused_unchanged() {
        let errors = load_str(
            "t.toml",
            "[[agent]]\nid = \"1\"\nname = \"A\"\npassword = \"p\"\nmax_calls = 2\n",
        )
        .expect_err("max_calls 2");
        assert!(errors
            .to_string()
            .starts_with("t.toml:5:13: agent[0].max_calls: "));
    }

    /// A certificate and key made with the tooling the tests have (rcgen).
    fn write_pair(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen makes a certificate");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, made.cert.pem()).expect("write cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
        (cert, key)
    }

    fn sip_tls(cert: &std::path::Path, key: &std::path::Path) -> String {
        format!(
            "[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        )
    }

    #[test]
    fn a_usable_certificate_pair_passes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = write_pair(dir.path());
        let config = load_str("t.toml", &sip_tls(&cert, &key)).expect("the pair is usable");
        assert_eq!(config.sip.listen_tls.len(), 1);
        let https = format!(
            "[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        );
        assert!(load_str("t.toml", &https).is_ok());
    }

    #[test]
    fn a_missing_certificate_file_is_a_located_configuration_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, key) = write_pair(dir.path());
        let missing = dir.path().join("nope.pem");
        let errors = load_str("t.toml", &sip_tls(&missing, &key)).expect_err("no such file");
        let line = errors.to_string();
        assert!(
            line.starts_with("t.toml:3:12: sip.tls_cert: cannot read certificate file ")
                && line.contains("nope.pem"),
            "{line}"
        );
    }

    #[test]
    fn garbage_certificate_or_key_is_a_located_configuration_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = write_pair(dir.path());
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a PEM file\n").expect("write");
        let errors = load_str("t.toml", &sip_tls(&garbage, &key)).expect_err("garbage cert");
        assert_eq!(
            errors.to_string(),
            format!(
                "t.toml:3:12: sip.tls_cert: no PEM certificate (-----BEGIN CERTIFICATE-----) in {}",
                garbage.display()
            )
        );
        let errors = load_str("t.toml", &sip_tls(&cert, &garbage)).expect_err("garbage key");
        assert!(errors
            .to_string()
            .starts_with("t.toml:4:11: sip.tls_key: no PEM private key"));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_on_the_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, _) = write_pair(dir.path());
        let other = tempfile::tempdir().expect("temp dir");
        let (_, other_key) = write_pair(other.path());
        let https = format!(
            "[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            other_key.display()
        );
        let errors = load_str("t.toml", &https).expect_err("key does not match");
        let line = errors.to_string();
        assert!(
            line.starts_with(
                "t.toml:3:11: http.tls_key: certificate and key cannot be used together"
            ),
            "{line}"
        );
    }

    #[test]
    fn the_extra_ca_file_and_the_phone_verification_switch_are_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, _) = write_pair(dir.path());
        let config = load_str(
            "t.toml",
            &format!(
                "[sip]\ntls_ca = \"{}\"\ntls_verify_phones = true\n",
                cert.display()
            ),
        )
        .expect("a PEM certificate is a usable CA file");
        assert_eq!(config.sip.tls_ca.as_deref(), Some(cert.as_path()));
        assert!(config.sip.tls_verify_phones);
        let defaults = load_str("t.toml", "").expect("defaults");
        assert_eq!(defaults.sip.tls_ca, None);
        assert!(
            !defaults.sip.tls_verify_phones,
            "phones are not verified by default"
        );
        let missing = dir.path().join("nope.pem");
        let errors = load_str(
            "t.toml",
            &format!("[sip]\ntls_ca = \"{}\"\n", missing.display()),
        )
        .expect_err("no such file");
        let line = errors.to_string();
        assert!(
            line.starts_with("t.toml:2:10: sip.tls_ca: cannot read certificate file "),
            "{line}"
        );
    }

    #[test]
    fn our_client_certificate_is_read_and_checked_under_its_own_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = write_pair(dir.path());
        let config = load_str(
            "t.toml",
            &format!(
                "[sip]\ntls_client_cert = \"{}\"\ntls_client_key = \"{}\"\n",
                cert.display(),
                key.display()
            ),
        )
        .expect("a usable pair");
        assert_eq!(
            config.sip.tls_client_certificate,
            Some(config::TlsCertificate::Files {
                cert: cert.clone(),
                key: key.clone()
            })
        );
        assert_eq!(
            load_str("t.toml", "")
                .expect("defaults")
                .sip
                .tls_client_certificate,
            None,
            "no client certificate by default"
        );
        let missing = dir.path().join("nope.pem");
        let line = load_str(
            "t.toml",
            &format!(
                "[sip]\ntls_client_cert = \"{}\"\ntls_client_key = \"{}\"\n",
                cert.display(),
                missing.display()
            ),
        )
        .expect_err("no such key file")
        .to_string();
        assert!(
            line.starts_with("t.toml:3:18: sip.tls_client_key: "),
            "{line}"
        );
        let line = load_str(
            "t.toml",
            &format!("[sip]\ntls_client_cert = \"{}\"\n", cert.display()),
        )
        .expect_err("a certificate without its key")
        .to_string();
        assert_eq!(
            line,
            "t.toml:2:19: sip.tls_client_cert: tls_client_cert needs tls_client_key (the certificate's private key, PEM)"
        );
    }
}
