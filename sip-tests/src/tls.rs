//! TLS test material: certificates made on the spot (rcgen) and `openssl s_client` as an
//! independent TLS client that sends SIP requests typed into it and shows what comes back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::TlsFiles;
use crate::error::{HarnessError, HarnessResult};
use crate::logged_process::LoggedProcess;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    /// Where the certificate and key are.
    pub files: TlsFiles,
    /// SHA-256 of the certificate, `AB:CD:…` (as Switchboard logs it).
    pub fingerprint: String,
}

impl TestCertificate {
    /// Makes a certificate and writes `<dir>/<name>-cert.pem` and `<dir>/<name>-key.pem`.
    pub fn generate(dir: &Path, name: &str) -> HarnessResult<Self> {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .map_err(|e| HarnessError::Unexpected(format!("rcgen: {e}")))?;
        let files = TlsFiles {
            cert: dir.join(format!("{name}-cert.pem")),
            key: dir.join(format!("{name}-key.pem")),
        };
        let fingerprint = fingerprint(made.cert.der());
        let certificate = Self { files, fingerprint };
        certificate.write_pem(&made.cert.pem(), &made.signing_key.serialize_pem())?;
        Ok(certificate)
    }

    /// Writes this certificate's PEM text to `files` (another certificate's paths: a renewal).
    fn write_pem(&self, cert: &str, key: &str) -> HarnessResult<()> {
        std::fs::write(&self.files.cert, cert)
            .map_err(|e| HarnessError::io(format!("writing {}", self.files.cert.display()), e))?;
        std::fs::write(&self.files.key, key)
            .map_err(|e| HarnessError::io(format!("writing {}", self.files.key.display()), e))
    }

    /// Copies this certificate over the files of `target` (as a renewal replaces files in place).
    pub fn install_over(&self, target: &TlsFiles) -> HarnessResult<()> {
        for (from, to) in [
            (&self.files.cert, &target.cert),
            (&self.files.key, &target.key),
        ] {
            std::fs::copy(from, to).map_err(|e| {
                HarnessError::io(format!("copying {} to {}", from.display(), to.display()), e)
            })?;
        }
        Ok(())
    }
}

/// A test certificate authority that issues client certificates (mutual TLS).
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate in PEM, written to `<dir>/<name>-ca.pem`.
    pub cert: PathBuf,
    dir: PathBuf,
}

impl TestCa {
    /// A new CA; its certificate goes to `<dir>/<name>-ca.pem`.
    pub fn generate(dir: &Path, name: &str) -> HarnessResult<Self> {
        let rcgen_error = |e: rcgen::Error| HarnessError::Unexpected(format!("rcgen: {e}"));
        let key = rcgen::KeyPair::generate().map_err(rcgen_error)?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).map_err(rcgen_error)?;
        let cert = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert, ca.pem())
            .map_err(|e| HarnessError::io(format!("writing {}", cert.display()), e))?;
        Ok(Self {
            issuer: rcgen::Issuer::new(params, key),
            cert,
            dir: dir.to_path_buf(),
        })
    }

    /// A client certificate for `dns_name` signed by this CA, in `<dir>/<file>-cert.pem` and
    /// `<dir>/<file>-key.pem`.
    pub fn client(&self, dns_name: &str, file: &str) -> HarnessResult<TlsFiles> {
        self.issue(dns_name, file, None)
    }

    /// A server certificate for `names` (DNS names or IP addresses) signed by this CA, in
    /// `<dir>/<file>-cert.pem` and `<dir>/<file>-key.pem` (a carrier's or a phone's).
    pub fn server(&self, names: &[&str], file: &str) -> HarnessResult<TlsFiles> {
        let rcgen_error = |e: rcgen::Error| HarnessError::Unexpected(format!("rcgen: {e}"));
        let key = rcgen::KeyPair::generate().map_err(rcgen_error)?;
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .map_err(rcgen_error)?;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_error)?;
        self.write(file, &cert.pem(), &key.serialize_pem())
    }

    fn write(&self, file: &str, cert: &str, key: &str) -> HarnessResult<TlsFiles> {
        let files = TlsFiles {
            cert: self.dir.join(format!("{file}-cert.pem")),
            key: self.dir.join(format!("{file}-key.pem")),
        };
        for (path, pem) in [(&files.cert, cert), (&files.key, key)] {
            std::fs::write(path, pem)
                .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(files)
    }

    /// [`TestCa::client`] for a certificate that expired yesterday (valid for the month before).
    pub fn expired_client(&self, dns_name: &str, file: &str) -> HarnessResult<TlsFiles> {
        let now = time::OffsetDateTime::now_utc();
        let validity = (
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        );
        self.issue(dns_name, file, Some(validity))
    }

    fn issue(
        &self,
        dns_name: &str,
        file: &str,
        validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    ) -> HarnessResult<TlsFiles> {
        let rcgen_error = |e: rcgen::Error| HarnessError::Unexpected(format!("rcgen: {e}"));
        let key = rcgen::KeyPair::generate().map_err(rcgen_error)?;
        let mut params =
            rcgen::CertificateParams::new(vec![dns_name.to_owned()]).map_err(rcgen_error)?;
        if let Some((not_before, not_after)) = validity {
            params.not_before = not_before;
            params.not_after = not_after;
        }
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, dns_name.to_owned());
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_error)?;
        let files = TlsFiles {
            cert: self.dir.join(format!("{file}-cert.pem")),
            key: self.dir.join(format!("{file}-key.pem")),
        };
        for (path, pem) in [(&files.cert, cert.pem()), (&files.key, key.serialize_pem())] {
            std::fs::write(path, pem)
                .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(files)
    }
}

/// SHA-256 of DER bytes as upper-case hex pairs joined by colons.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `openssl s_client` connected to a SIP TLS listener, trusting only `ca`; what the server
/// sends is in its log.
pub struct OpensslClient {
    process: LoggedProcess,
    local_via: String,
}

impl OpensslClient {
    /// Connects to `server`, verifying its certificate against `ca` (the handshake fails and
    /// the client exits if the server presents another certificate).
    pub fn connect(log: &Path, server: SocketAddr, ca: &Path) -> HarnessResult<Self> {
        Self::connect_as(log, server, ca, None)
    }

    /// [`OpensslClient::connect`] presenting the client certificate `client` when the
    /// server asks for one (mutual TLS), or none.
    pub fn connect_as(
        log: &Path,
        server: SocketAddr,
        ca: &Path,
        client: Option<&TlsFiles>,
    ) -> HarnessResult<Self> {
        let mut command = Command::new("openssl");
        command
            .arg("s_client")
            .arg("-connect")
            .arg(server.to_string())
            .arg("-CAfile")
            .arg(ca)
            .args([
                "-verify_return_error",
                "-quiet",
                "-no_ign_eof",
                "-nocommands",
            ]);
        if let Some(client) = client {
            command
                .arg("-cert")
                .arg(&client.cert)
                .arg("-key")
                .arg(&client.key);
        }
        let process = LoggedProcess::spawn("openssl s_client", command, log, true)?;
        Ok(Self {
            process,
            local_via: "127.0.0.1:5999".to_owned(),
        })
    }

    /// Sends `message` as it is (its lines end in CRLF; the last line is the empty one).
    pub fn send_message(&mut self, message: &str) -> HarnessResult<()> {
        for line in message.trim_end_matches("\r\n").split("\r\n") {
            self.process.send_line(&format!("{line}\r"))?;
        }
        self.process.send_line("\r")
    }

    /// Sends an OPTIONS with `call_id` (CRLF line ends, Content-Length 0).
    pub fn send_options(&mut self, call_id: &str) -> HarnessResult<()> {
        self.send_request("OPTIONS", "100", call_id)
    }

    /// Sends `method` (without a body) to `user`@127.0.0.1 with `call_id`.
    pub fn send_request(&mut self, method: &str, user: &str, call_id: &str) -> HarnessResult<()> {
        let lines = [
            format!("{method} sip:{user}@127.0.0.1 SIP/2.0"),
            format!("Contact: <sip:trunk@{};transport=tls>", self.local_via),
            format!(
                "Via: SIP/2.0/TLS {};branch=z9hG4bK-{call_id};rport",
                self.local_via
            ),
            "Max-Forwards: 70".to_owned(),
            format!("From: <sip:probe@127.0.0.1>;tag={call_id}"),
            format!("To: <sip:{user}@127.0.0.1>"),
            format!("Call-ID: {call_id}"),
            format!("CSeq: 1 {method}"),
            "Content-Length: 0".to_owned(),
            String::new(),
        ];
        for line in lines {
            // send_line adds the LF; SIP wants CRLF.
            self.process.send_line(&format!("{line}\r"))?;
        }
        Ok(())
    }

    /// Waits until the server's answer to `call_id` arrived with `status` (e.g. `200 OK`).
    pub fn wait_for_answer(&self, call_id: &str, timeout: Duration) -> HarnessResult<()> {
        self.process
            .wait_for(&format!("Call-ID: {call_id}"), timeout)
            .map_err(|_| self.process.failure(&format!("no answer to {call_id}")))
    }

    /// Waits until the client printed `needle` (e.g. a status line), within `timeout`.
    pub fn wait_for_text(&self, needle: &str, timeout: Duration) -> HarnessResult<()> {
        self.process
            .wait_for(needle, timeout)
            .map_err(|_| self.process.failure(&format!("no {needle:?}")))
    }

    /// Everything the client printed (the server's messages, handshake errors).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits until the client has exited (e.g. after a refused handshake), within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> HarnessResult<()> {
        let deadline = std::time::Instant::now() + timeout;
        while self.process.is_running() {
            if std::time::Instant::now() > deadline {
                return Err(self.process.failure("still running"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The log file.
    pub fn log_path(&self) -> PathBuf {
        self.process.log_path().to_path_buf()
    }
}

/// `openssl s_server` as a TLS peer Switchboard connects to (a carrier's gateway, a phone's
/// TLS listener): it presents `files` and prints everything it receives in its log. It never
/// answers: tests look at what arrived.
pub struct OpensslServer {
    process: LoggedProcess,
}

impl OpensslServer {
    /// Listens on 127.0.0.1:`port`; returns once it accepts connections.
    pub fn start(log: &Path, port: u16, files: &TlsFiles) -> HarnessResult<Self> {
        Self::start_with(log, port, files, &[])
    }

    /// [`OpensslServer::start`] for a carrier that requires mutual TLS: a client that
    /// presents no certificate, or one not issued by `client_ca`, fails the handshake
    /// (`-Verify 1 -verify_return_error -CAfile client_ca`).
    pub fn start_requiring_client_certificate(
        log: &Path,
        port: u16,
        files: &TlsFiles,
        client_ca: &Path,
    ) -> HarnessResult<Self> {
        let ca = client_ca.display().to_string();
        Self::start_with(
            log,
            port,
            files,
            &["-Verify", "1", "-verify_return_error", "-CAfile", &ca],
        )
    }

    fn start_with(log: &Path, port: u16, files: &TlsFiles, extra: &[&str]) -> HarnessResult<Self> {
        let mut command = Command::new("openssl");
        command
            .arg("s_server")
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&files.cert)
            .arg("-key")
            .arg(&files.key)
            .args(extra);
        // Standard input stays open (and silent): at its end s_server would close the connection.
        let process = LoggedProcess::spawn("openssl s_server", command, log, true)?;
        process
            .wait_for("ACCEPT", Duration::from_secs(30))
            .map_err(|_| process.failure("s_server did not start listening"))?;
        Ok(Self { process })
    }

    /// Waits until the server printed `needle` (e.g. a request line), within `timeout`.
    pub fn wait_for_text(&self, needle: &str, timeout: Duration) -> HarnessResult<()> {
        self.process
            .wait_for(needle, timeout)
            .map_err(|_| self.process.failure(&format!("no {needle:?}")))
    }

    /// Everything the server printed: what it received and its handshake reports.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
