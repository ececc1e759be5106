use super::*;
use std::time::Duration;

/// An upstream that echoes every byte back.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

async fn echo(client: &mut TcpStream, bytes: &[u8]) -> Option<Vec<u8>> {
    client.write_all(bytes).await.unwrap();
    let mut back = vec![0u8; bytes.len()];
    match tokio::time::timeout(Duration::from_millis(300), client.read_exact(&mut back)).await {
        Ok(Ok(_)) => Some(back),
        _ => None,
    }
}

#[tokio::test]
async fn it_forwards_freezes_resumes_and_cuts() {
    let proxy = TcpProxy::start(echo_server().await).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        echo(&mut client, b"ping").await.as_deref(),
        Some(&b"ping"[..])
    );

    proxy.freeze();
    assert_eq!(
        echo(&mut client, b"lost?").await,
        None,
        "bytes moved while frozen"
    );

    proxy.resume();
    // The frozen bytes were held, not dropped: they arrive once forwarding resumes.
    let mut held = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(2), client.read_exact(&mut held))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&held, b"lost?");

    proxy.cut();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "still open after cut: {read:?}"
    );

    proxy.resume();
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(
        echo(&mut again, b"back").await.as_deref(),
        Some(&b"back"[..])
    );
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections() {
    let proxy = TcpProxy::start(echo_server().await).await.unwrap();
    let addr = proxy.addr();
    let mut client = TcpStream::connect(addr).await.unwrap();
    assert!(echo(&mut client, b"hi").await.is_some());
    drop(proxy);
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "still open: {read:?}");
}
