//! Zig-zag varints as Kafka's record format uses them.

use super::RecordError;

pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_varlong(out, i64::from(value));
}

/// Reads a varlong at `*pos`, advancing it.
pub fn get_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, RecordError> {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = *buf.get(*pos).ok_or(RecordError::Truncated)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return Err(RecordError::Corrupt("varint overflows 64 bits".into()));
        }
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(RecordError::Corrupt("varint longer than 10 bytes".into()))
}

pub fn get_varint(buf: &[u8], pos: &mut usize) -> Result<i32, RecordError> {
    let v = get_varlong(buf, pos)?;
    i32::try_from(v).map_err(|_| RecordError::Corrupt(format!("varint {v} out of i32 range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlongs_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            let mut pos = 0;
            assert_eq!(get_varlong(&buf, &mut pos).ok(), Some(v));
            assert_eq!(pos, buf.len());
        }
        assert_eq!(
            get_varlong(&[0x80], &mut 0).err(),
            Some(RecordError::Truncated)
        );
    }
}
