//! Kerberos (SPNEGO) initiator on the system's MIT GSSAPI library, loaded at run time with `libloading`:
//! the build needs no system library, and the same binary runs (without Kerberos) where krb5 is absent.

use crate::error::{Error, Result};
use crate::secret::Secret;
use std::ffi::c_void;
use std::sync::OnceLock;

type OmUint32 = u32;
type GssName = *mut c_void;
type GssCtx = *mut c_void;
type GssCred = *mut c_void;

#[repr(C)]
struct Buffer {
    length: usize,
    value: *mut c_void,
}

#[repr(C)]
struct Oid {
    length: OmUint32,
    elements: *const c_void,
}

#[repr(C)]
struct OidSet {
    count: usize,
    elements: *const Oid,
}

// DER bodies of the object identifiers we use (RFC 2743, RFC 4178, RFC 1964).
const OID_NT_HOSTBASED_SERVICE: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04"; // 1.2.840.113554.1.2.1.4
const OID_NT_USER_NAME: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x01"; // 1.2.840.113554.1.2.1.1
const OID_SPNEGO: &[u8] = b"\x2b\x06\x01\x05\x05\x02"; // 1.3.6.1.5.5.2

const GSS_C_MUTUAL_FLAG: OmUint32 = 2;
const GSS_C_INITIATE: i32 = 1;
const GSS_C_GSS_CODE: i32 = 1;
const GSS_C_MECH_CODE: i32 = 2;
const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
/// Routine errors live in bits 16..24, calling errors in 24..32.
const GSS_ERROR_MASK: OmUint32 = 0xffff_0000;
const GSS_S_NO_CRED: OmUint32 = 7 << 16;
const GSS_S_CREDENTIALS_EXPIRED: OmUint32 = 11 << 16;

type ImportName = unsafe extern "C" fn(*mut OmUint32, *const Buffer, *const Oid, *mut GssName) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    GssCred,
    *mut GssCtx,
    GssName,
    *const Oid,
    OmUint32,
    OmUint32,
    *const c_void,
    *const Buffer,
    *mut *const Oid,
    *mut Buffer,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type AcquireCredWithPassword = unsafe extern "C" fn(
    *mut OmUint32,
    GssName,
    *const Buffer,
    OmUint32,
    *const OidSet,
    i32,
    *mut GssCred,
    *mut *mut OidSet,
    *mut OmUint32,
) -> OmUint32;
type InquireContext = unsafe extern "C" fn(
    *mut OmUint32,
    GssCtx,
    *mut GssName,
    *mut GssName,
    *mut OmUint32,
    *mut *const Oid,
    *mut OmUint32,
    *mut i32,
    *mut i32,
) -> OmUint32;
type DisplayName = unsafe extern "C" fn(*mut OmUint32, GssName, *mut Buffer, *mut *const Oid) -> OmUint32;
type DisplayStatus =
    unsafe extern "C" fn(*mut OmUint32, OmUint32, i32, *const Oid, *mut OmUint32, *mut Buffer) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut Buffer) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut GssName) -> OmUint32;
type ReleaseCred = unsafe extern "C" fn(*mut OmUint32, *mut GssCred) -> OmUint32;
type DeleteSecContext = unsafe extern "C" fn(*mut OmUint32, *mut GssCtx, *mut Buffer) -> OmUint32;

/// The GSSAPI entry points we call, resolved once from the shared library.
struct Gssapi {
    import_name: ImportName,
    init_sec_context: InitSecContext,
    acquire_cred_with_password: AcquireCredWithPassword,
    inquire_context: InquireContext,
    display_name: DisplayName,
    display_status: DisplayStatus,
    release_buffer: ReleaseBuffer,
    release_name: ReleaseName,
    release_cred: ReleaseCred,
    delete_sec_context: DeleteSecContext,
    /// Keeps the library mapped for as long as the function pointers above live (forever).
    _library: libloading::Library,
}

/// Library names tried in order (MIT krb5 on Linux and the BSDs).
const LIBRARY_NAMES: &[&str] = &["libgssapi_krb5.so.2", "libgssapi_krb5.so"];

fn library() -> Result<&'static Gssapi> {
    static LOADED: OnceLock<std::result::Result<Gssapi, String>> = OnceLock::new();
    LOADED.get_or_init(load).as_ref().map_err(|why| Error::Config(why.clone()))
}

fn load() -> std::result::Result<Gssapi, String> {
    if cfg!(windows) {
        return Err("Kerberos (SPNEGO) is not supported on Windows yet (it would need SSPI); \
                    use `mechanism = \"ntlm\"` with a username and password there"
            .into());
    }
    load_from(LIBRARY_NAMES)
}

fn load_from(names: &[&str]) -> std::result::Result<Gssapi, String> {
    let mut last = String::new();
    for name in names {
        // SAFETY: loading the system GSSAPI library runs its (well-behaved) initialisers only.
        match unsafe { libloading::Library::new(name) } {
            Ok(library) => return resolve(library).map_err(|e| format!("{name}: {e}")),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "Kerberos needs the MIT GSSAPI library, which is not installed ({last}); install it \
         (Debian/Ubuntu: `apt-get install libgssapi-krb5-2 krb5-user`, Fedora/RHEL: `dnf install krb5-libs krb5-workstation`) \
         or use mechanism = \"ntlm\""
    ))
}

fn resolve(library: libloading::Library) -> std::result::Result<Gssapi, libloading::Error> {
    // SAFETY: each symbol is declared with the C prototype of RFC 2744 / MIT's gssapi_ext.h.
    unsafe {
        Ok(Gssapi {
            import_name: *library.get(b"gss_import_name\0")?,
            init_sec_context: *library.get(b"gss_init_sec_context\0")?,
            acquire_cred_with_password: *library.get(b"gss_acquire_cred_with_password\0")?,
            inquire_context: *library.get(b"gss_inquire_context\0")?,
            display_name: *library.get(b"gss_display_name\0")?,
            display_status: *library.get(b"gss_display_status\0")?,
            release_buffer: *library.get(b"gss_release_buffer\0")?,
            release_name: *library.get(b"gss_release_name\0")?,
            release_cred: *library.get(b"gss_release_cred\0")?,
            delete_sec_context: *library.get(b"gss_delete_sec_context\0")?,
            _library: library,
        })
    }
}

#[allow(clippy::cast_possible_truncation)] // a static OID of a few bytes
fn oid(der: &'static [u8]) -> Oid {
    Oid { length: der.len() as OmUint32, elements: der.as_ptr().cast() }
}

fn is_error(major: OmUint32) -> bool {
    major & GSS_ERROR_MASK != 0
}

impl Gssapi {
    /// All messages for a major/minor status pair, e.g. "Unspecified GSS failure.  Minor code may
    /// provide more information: No Kerberos credentials available (default cache: FILE:/tmp/krb5cc_0)".
    fn describe(&self, major: OmUint32, minor: OmUint32) -> String {
        let mut parts = Vec::new();
        for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
            if code == 0 {
                continue;
            }
            let mut context = 0;
            loop {
                let (mut ignored, mut buffer) = (0, Buffer { length: 0, value: std::ptr::null_mut() });
                // SAFETY: out-parameters are valid; the buffer is released below.
                let status = unsafe {
                    (self.display_status)(&mut ignored, code, kind, std::ptr::null(), &mut context, &mut buffer)
                };
                if is_error(status) {
                    break;
                }
                let text = self.take_buffer(&mut buffer);
                let text = String::from_utf8_lossy(&text).trim().to_string();
                if !text.is_empty() {
                    parts.push(text);
                }
                if context == 0 {
                    break;
                }
            }
        }
        parts.join(": ")
    }

    /// Copies a GSSAPI-owned buffer out and releases it.
    fn take_buffer(&self, buffer: &mut Buffer) -> Vec<u8> {
        let bytes = if buffer.value.is_null() || buffer.length == 0 {
            Vec::new()
        } else {
            // SAFETY: GSSAPI handed us `length` readable bytes at `value`.
            unsafe { std::slice::from_raw_parts(buffer.value as *const u8, buffer.length).to_vec() }
        };
        let mut minor = 0;
        // SAFETY: the buffer came from GSSAPI and is released once.
        unsafe { (self.release_buffer)(&mut minor, buffer) };
        bytes
    }

    fn import_name(&self, text: &str, name_type: &'static [u8]) -> Result<GssName> {
        let buffer = Buffer { length: text.len(), value: text.as_ptr() as *mut c_void };
        let (mut minor, mut name) = (0, std::ptr::null_mut());
        let kind = oid(name_type);
        // SAFETY: the buffer borrows `text`, which outlives the call; GSSAPI copies it.
        let major = unsafe { (self.import_name)(&mut minor, &buffer, &kind, &mut name) };
        if is_error(major) {
            return Err(Error::Config(format!(
                "Kerberos cannot read the name `{text}`: {}",
                self.describe(major, minor)
            )));
        }
        Ok(name)
    }
}

/// Why a handshake could not start: no ticket is a login matter, anything else the server's or the setup's.
pub enum CredentialProblem {
    /// No Kerberos ticket (run `kinit`).
    NoTicket(String),
    /// Any other GSSAPI failure.
    Other(String),
}

/// One SPNEGO security context towards `HTTP@host`.
pub struct Initiator {
    gss: &'static Gssapi,
    target: GssName,
    cred: GssCred,
    context: GssCtx,
    complete: bool,
}

impl Initiator {
    /// A context for the web server `host`, with the credentials of `user`/`password` (acquired
    /// into memory, never into a ticket cache) or, without them, the user's ticket cache.
    pub fn new(host: &str, login: Option<(&str, &Secret)>) -> Result<Initiator> {
        let gss = library()?;
        let target = gss.import_name(&format!("HTTP@{host}"), OID_NT_HOSTBASED_SERVICE)?;
        let mut initiator =
            Initiator { gss, target, cred: std::ptr::null_mut(), context: std::ptr::null_mut(), complete: false };
        if let Some((user, password)) = login {
            initiator.cred = initiator.acquire_with_password(user, password)?;
        }
        Ok(initiator)
    }

    fn acquire_with_password(&self, user: &str, password: &Secret) -> Result<GssCred> {
        let gss = self.gss;
        let mut name = gss.import_name(user, OID_NT_USER_NAME)?;
        let secret = Buffer { length: password.expose().len(), value: password.expose().as_ptr() as *mut c_void };
        let spnego = oid(OID_SPNEGO);
        let mechs = OidSet { count: 1, elements: &spnego };
        let (mut minor, mut cred) = (0, std::ptr::null_mut());
        // SAFETY: every pointer is valid for the call; GSSAPI copies the password.
        let major = unsafe {
            (gss.acquire_cred_with_password)(
                &mut minor,
                name,
                &secret,
                0,
                &mechs,
                GSS_C_INITIATE,
                &mut cred,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let mut ignored = 0;
        // SAFETY: the name came from gss_import_name and is released once.
        unsafe { (gss.release_name)(&mut ignored, &mut name) };
        if is_error(major) {
            return Err(Error::server(format!(
                "the Kerberos KDC refused the password of {user}: {}",
                gss.describe(major, minor)
            )));
        }
        Ok(cred)
    }

    /// True when the context is established.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// One step: the server's token (none at first) in, our next token out (empty when done).
    pub fn step(&mut self, input: Option<&[u8]>) -> std::result::Result<Vec<u8>, CredentialProblem> {
        let gss = self.gss;
        let input = input.map(|bytes| Buffer { length: bytes.len(), value: bytes.as_ptr() as *mut c_void });
        let input_ptr = input.as_ref().map_or(std::ptr::null(), |b| b as *const Buffer);
        let mut output = Buffer { length: 0, value: std::ptr::null_mut() };
        let spnego = oid(OID_SPNEGO);
        let mut minor = 0;
        // SAFETY: handles are ours; `input` borrows a slice alive for the call; output is released by take_buffer.
        let major = unsafe {
            (gss.init_sec_context)(
                &mut minor,
                self.cred,
                &mut self.context,
                self.target,
                &spnego,
                GSS_C_MUTUAL_FLAG,
                0,
                std::ptr::null(),
                input_ptr,
                std::ptr::null_mut(),
                &mut output,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        let token = gss.take_buffer(&mut output);
        if is_error(major) {
            let message = gss.describe(major, minor);
            let routine = major & 0x00ff_0000;
            let no_ticket = routine == GSS_S_NO_CRED
                || routine == GSS_S_CREDENTIALS_EXPIRED
                || message.contains("No Kerberos credentials")
                || message.contains("expired");
            return Err(if no_ticket && self.cred.is_null() {
                CredentialProblem::NoTicket(message)
            } else {
                CredentialProblem::Other(message)
            });
        }
        self.complete = major & GSS_S_CONTINUE_NEEDED == 0;
        Ok(token)
    }

    /// The client principal, e.g. `alice@EXAMPLE.TEST`, once a context exists.
    pub fn client_name(&self) -> Option<String> {
        if self.context.is_null() {
            return None;
        }
        let gss = self.gss;
        let (mut minor, mut source) = (0, std::ptr::null_mut());
        // SAFETY: only the source name is asked for; it is released below.
        let major = unsafe {
            (gss.inquire_context)(
                &mut minor,
                self.context,
                &mut source,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if is_error(major) || source.is_null() {
            return None;
        }
        let mut buffer = Buffer { length: 0, value: std::ptr::null_mut() };
        // SAFETY: `source` is a valid name; the buffer is released by take_buffer.
        let shown = unsafe { (gss.display_name)(&mut minor, source, &mut buffer, std::ptr::null_mut()) };
        let text = (!is_error(shown)).then(|| String::from_utf8_lossy(&gss.take_buffer(&mut buffer)).into_owned());
        // SAFETY: released once.
        unsafe { (gss.release_name)(&mut minor, &mut source) };
        text
    }
}

impl Drop for Initiator {
    fn drop(&mut self) {
        let gss = self.gss;
        let mut minor = 0;
        // SAFETY: each handle is ours and released once; null handles are skipped.
        unsafe {
            if !self.context.is_null() {
                (gss.delete_sec_context)(&mut minor, &mut self.context, std::ptr::null_mut());
            }
            if !self.cred.is_null() {
                (gss.release_cred)(&mut minor, &mut self.cred);
            }
            if !self.target.is_null() {
                (gss.release_name)(&mut minor, &mut self.target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_is_a_clear_error_naming_the_package() {
        let why = load_from(&["libgssapi_krb5-not-here.so.9"]).err().expect("no such library");
        assert!(why.contains("libgssapi-krb5-2") && why.contains("krb5-libs") && why.contains("ntlm"), "{why}");
    }

    #[test]
    fn the_system_library_resolves_every_function_we_call() {
        // The test machines have krb5 installed (tests/setup/kerberos.sh); this also checks the symbol names.
        if let Err(why) = load() {
            panic!("{why}\nrun `bash tests/setup/kerberos.sh` first");
        }
    }
}
