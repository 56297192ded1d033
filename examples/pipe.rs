//! `add_reader` on a pipe that another thread writes to.
//!
//! ```text
//! cargo run --release --example pipe
//! ```
//!
//! A writer thread sends five lines through an OS pipe, asking the loop after each one,
//! through `call_soon_threadsafe`, to note that a line is on its way. The loop reads the
//! pipe from an `add_reader` callback, which runs whenever the pipe is readable, and stops
//! once it has read the writer's goodbye and the pipe reports end of file.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use evloop::EventLoop;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let event_loop = EventLoop::new()?;
    // A socketpair behaves as a pipe here and needs no unsafe code to create.
    let (reader, mut writer) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    let reader = Rc::new(RefCell::new(reader));
    let remote = event_loop.remote();

    let writer_thread = std::thread::spawn(move || {
        for i in 1..=5 {
            remote
                .call_soon_threadsafe(move || println!("loop: the writer says line {i} is coming"))
                .unwrap();
            let line = format!("line {i} from thread {:?}\n", std::thread::current().id());
            writer.write_all(line.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        writer.write_all(b"goodbye\n").unwrap();
    });

    let fd = reader.borrow().as_raw_fd();
    let l = event_loop.clone();
    let pipe = reader.clone();
    event_loop.add_reader(fd, move || {
        let mut buf = [0u8; 4096];
        match pipe.borrow_mut().read(&mut buf) {
            Ok(0) => {
                println!("reader: end of file");
                l.remove_reader(fd).unwrap();
                l.stop();
            }
            Ok(n) => print!("reader: {}", String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                eprintln!("reader: {e}");
                l.stop();
            }
        }
    })?;
    event_loop.run_forever()?;
    writer_thread.join().expect("writer thread panicked");
    println!("{:?}", event_loop.stats());
    event_loop.close()?;
    Ok(())
}
