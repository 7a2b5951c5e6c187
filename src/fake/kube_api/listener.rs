//! A listener that can be switched off: while off, the port is closed (connections are
//! refused) and every open connection is reset, as when an API server goes away.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Accepts connections while `available` is true; rebinds the same address when it turns
/// true again.
pub(super) struct SwitchListener {
    pub(super) addr: SocketAddr,
    pub(super) listener: Option<TcpListener>,
    pub(super) available: watch::Receiver<bool>,
    /// Cancelled (and replaced) to reset every open connection.
    pub(super) kill: Arc<Mutex<CancellationToken>>,
}

/// A TCP stream that fails with `ConnectionReset` once its token is cancelled.
pub struct KillableStream {
    inner: TcpStream,
    killed: Pin<Box<WaitForCancellationFutureOwned>>,
}

const RETRY_DELAY: Duration = Duration::from_millis(10);

impl axum::serve::Listener for SwitchListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if !*self.available.borrow_and_update() {
                self.listener = None;
                if self.available.wait_for(|a| *a).await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            let Some(listener) = &self.listener else {
                match TcpListener::bind(self.addr).await {
                    Ok(listener) => self.listener = Some(listener),
                    Err(_) => tokio::time::sleep(RETRY_DELAY).await,
                }
                continue;
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let token = self
                            .kill
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .clone();
                        let killed = Box::pin(token.cancelled_owned());
                        return (KillableStream { inner: stream, killed }, addr);
                    }
                    Err(_) => tokio::time::sleep(RETRY_DELAY).await,
                },
                _ = self.available.changed() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

impl KillableStream {
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.killed.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::ErrorKind::ConnectionReset.into()),
            Poll::Pending => Ok(()),
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(error) = this.check(cx) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
