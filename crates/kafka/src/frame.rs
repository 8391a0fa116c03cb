//! Frames: an i32 size, then the request header and body. A frame is bounded before any
//! of it is read and read into memory only as its bytes arrive; the header is parsed
//! by hand (kafka-protocol's header decoder panics on short frames).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Kafka's `socket.request.max.bytes` default.
pub(crate) const MAX_FRAME_BYTES: usize = 100 << 20;
/// api key, api version, correlation id.
const FIXED_HEADER_BYTES: usize = 8;

#[derive(Debug, Error)]
pub(crate) enum FrameError {
    #[error("frame size {0} is outside 8..={MAX_FRAME_BYTES}")]
    Size(i64),
    #[error("connection closed inside a frame")]
    Truncated,
    #[error("malformed request header: {0}")]
    Header(&'static str),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// A response kafka-protocol cannot encode: a bug in a handler.
    #[error("cannot encode the response: {0}")]
    Encode(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame; `None` when the peer closed the connection between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    let len = usize::try_from(size)
        .ok()
        .filter(|l| (FIXED_HEADER_BYTES..=max_bytes).contains(l))
        .ok_or(FrameError::Size(i64::from(size)))?;
    // Grows as bytes arrive: a peer that announces 100 MiB and sends 10 bytes costs 10.
    let mut frame = Vec::new();
    reader.take(len as u64).read_to_end(&mut frame).await?;
    if frame.len() != len {
        return Err(FrameError::Truncated);
    }
    Ok(Some(Bytes::from(frame)))
}

#[derive(Debug, Clone)]
pub(crate) struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// Parses the header; returns it and the body. Unknown API keys are refused here, before
/// the header's version-dependent part is read.
pub(crate) fn parse_header(frame: &Bytes) -> Result<(RequestHeader, Bytes), FrameError> {
    let fixed = frame
        .get(..FIXED_HEADER_BYTES)
        .ok_or(FrameError::Header("shorter than 8 bytes"))?;
    let api_key = i16::from_be_bytes([fixed[0], fixed[1]]);
    let api_version = i16::from_be_bytes([fixed[2], fixed[3]]);
    let correlation_id = i32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let key = ApiKey::try_from(api_key).map_err(|()| FrameError::UnknownApi(api_key))?;
    let header_version = key.request_header_version(api_version);
    let mut pos = FIXED_HEADER_BYTES;
    let mut client_id = None;
    if header_version >= 1 {
        let len = frame
            .get(pos..pos + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or(FrameError::Header("ends in the client id"))?;
        pos += 2;
        if len >= 0 {
            let end = pos + len as usize;
            let id = frame
                .get(pos..end)
                .ok_or(FrameError::Header("ends in the client id"))?;
            client_id = Some(String::from_utf8_lossy(id).into_owned());
            pos = end;
        }
    }
    if header_version >= 2 {
        let tags = varint(frame, &mut pos)?;
        for _ in 0..tags {
            let _tag = varint(frame, &mut pos)?;
            let size = varint(frame, &mut pos)? as usize;
            pos = pos
                .checked_add(size)
                .filter(|end| *end <= frame.len())
                .ok_or(FrameError::Header("a tagged field runs past the frame"))?;
        }
    }
    let header = RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id,
    };
    Ok((header, frame.slice(pos..)))
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u32, FrameError> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = *buf
            .get(*pos)
            .ok_or(FrameError::Header("ends in a varint"))?;
        *pos += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(FrameError::Header("varint longer than 5 bytes"))
}

/// A response frame: size, correlation id, (flexible header: no tagged fields), body.
pub(crate) fn encode_response(
    header: &RequestHeader,
    key: ApiKey,
    response: &ResponseKind,
    version: i16,
) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    buf.put_i32(header.correlation_id);
    if key.response_header_version(version) >= 1 {
        buf.put_u8(0);
    }
    response
        .encode(&mut buf, version)
        .map_err(|e| FrameError::Encode(e.to_string()))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_bounded_and_whole() {
        let mut ok: &[u8] = &[0, 0, 0, 8, 0, 18, 0, 0, 0, 0, 0, 1];
        assert_eq!(
            read_frame(&mut ok, 1024)
                .await
                .ok()
                .flatten()
                .map(|f| f.len()),
            Some(8)
        );
        let mut huge: &[u8] = &[0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(matches!(
            read_frame(&mut huge, 1024).await,
            Err(FrameError::Size(_))
        ));
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut negative, 1024).await.is_err());
        let mut cut: &[u8] = &[0, 0, 0, 20, 0, 18, 0, 0];
        assert!(matches!(
            read_frame(&mut cut, 1024).await,
            Err(FrameError::Truncated)
        ));
        let mut empty: &[u8] = &[];
        assert!(matches!(read_frame(&mut empty, 1024).await, Ok(None)));
    }

    #[test]
    fn headers_parse_or_fail_cleanly() {
        // Metadata v1 (header v1), client id "ab".
        let frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 9, 0, 2, b'a', b'b', 0xAA]);
        let (h, body) = parse_header(&frame).expect("valid");
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (3, 1, 9));
        assert_eq!(h.client_id.as_deref(), Some("ab"));
        assert_eq!(&body[..], &[0xAA]);
        // Client id length past the end, unknown API key, flexible header cut short.
        assert!(parse_header(&Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 9, 0, 9, b'a'])).is_err());
        assert!(parse_header(&Bytes::from_static(&[0x7f, 0, 0, 1, 0, 0, 0, 9])).is_err());
        assert!(parse_header(&Bytes::from_static(&[
            0, 3, 0, 12, 0, 0, 0, 9, 0xff, 0xff, 5
        ]))
        .is_err());
    }
}
