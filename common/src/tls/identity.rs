//! What a certificate says about its holder, read straight from its DER: the subject's common
//! name (the identity the internal services authorize) and the end of its validity (what
//! `osbctl certs` renews by). Only the few fields needed are walked; anything unexpected reads
//! as "unknown".

/// The subject common name (`CN`) of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let subject = tbs_field(der, TbsField::Subject)?;
    let mut names = subject;
    while !names.is_empty() {
        let (tag, set, rest) = tlv(names)?;
        names = rest;
        if tag != SET {
            return None;
        }
        let mut attributes = set;
        while !attributes.is_empty() {
            let (tag, attribute, rest) = tlv(attributes)?;
            attributes = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (tag, oid, value) = tlv(attribute)?;
            if tag == OID && oid == CN_OID {
                let (tag, text, _) = tlv(value)?;
                return match tag {
                    UTF8_STRING | PRINTABLE_STRING | IA5_STRING | T61_STRING => {
                        String::from_utf8(text.to_vec()).ok()
                    }
                    _ => None,
                };
            }
        }
    }
    None
}

/// The end of a DER certificate's validity (`notAfter`), in seconds since the Unix epoch.
pub fn not_after_unix(der: &[u8]) -> Option<i64> {
    let validity = tbs_field(der, TbsField::Validity)?;
    let (_, _not_before, rest) = tlv(validity)?;
    let (tag, time, _) = tlv(rest)?;
    let text = std::str::from_utf8(time).ok()?;
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const T61_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const EXPLICIT_VERSION: u8 = 0xa0;
/// 2.5.4.3, id-at-commonName.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];

#[derive(Clone, Copy)]
enum TbsField {
    Validity,
    Subject,
}

/// The contents of a field of `TBSCertificate`: version?, serial, signature, issuer,
/// validity, subject, …
fn tbs_field(der: &[u8], field: TbsField) -> Option<&[u8]> {
    let (tag, certificate, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == EXPLICIT_VERSION {
        rest = after;
    }
    // serial, signature algorithm, issuer
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (_, validity, rest) = tlv(rest)?;
    match field {
        TbsField::Validity => Some(validity),
        TbsField::Subject => Some(tlv(rest)?.1),
    }
}

/// One DER tag-length-value at the start of `input`: (tag, contents, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::CertificateAuthority;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn the_common_name_and_the_end_of_validity_are_read_from_an_issued_certificate() {
        let ca = CertificateAuthority::generate("test CA").unwrap();
        let leaf = ca.issue("spi-postgres", &["localhost".into()]).unwrap();
        let der = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("spi-postgres"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let end = not_after_unix(&der).unwrap();
        let days = (end - now) / 86_400;
        assert!(
            (360..=366).contains(&days),
            "a leaf is valid for about a year: {days} days"
        );
        assert_eq!(common_name(b"not a certificate"), None);
    }

    #[test]
    fn dates_convert_to_unix_time() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 5), 20_792);
    }
}
