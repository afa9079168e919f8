package mailboxtest

import (
	"fmt"
	"io"
	"sync"
)

// RETRFault is how the server answers a RETR; see SetRETRFault.
type RETRFault int

// RETR faults.
const (
	// RETRServe sends the message.
	RETRServe RETRFault = iota
	// RETRRefuse answers "-ERR" while the message stays listed ("UIDL n"
	// still names it), as a server that cannot read or convert one does.
	RETRRefuse
	// RETRVanish plays another session having deleted the message, which
	// servers that do not lock the maildrop allow: "-ERR There's no
	// message n." to the RETR and to every later command naming it.
	RETRVanish
	// RETRRefuseHangUp answers "-ERR", then closes the connection, as a
	// server that crashed would.
	RETRRefuseHangUp
	// RETRStall sends the first half of the reply, then nothing more
	// until the client hangs up, as a server hung mid-message would.
	RETRStall
)

// retrFaults holds each server's fault function. It lives here rather
// than in POP3Server so the fault stays a test-only add-on; an entry is
// removed by SetRETRFault(nil).
var retrFaults sync.Map // *POP3Server → func(n int) RETRFault

// SetRETRFault makes the server answer the RETRs that follow, and commands
// naming a vanished message, as fault says for each message number; nil
// serves every message again. Set it after the client listed the
// maildrop: the full UIDL and LIST listings ignore it.
func (s *POP3Server) SetRETRFault(fault func(n int) RETRFault) {
	if fault == nil {
		retrFaults.Delete(s)
		return
	}
	retrFaults.Store(s, fault)
}

func (s *POP3Server) retrFault(n int) RETRFault {
	f, ok := retrFaults.Load(s)
	if !ok {
		return RETRServe
	}
	return f.(func(int) RETRFault)(n)
}

// vanished reports whether message n is to be treated as deleted by
// another session.
func (pc *pop3Conn) vanished(n int) bool { return pc.srv.retrFault(n) == RETRVanish }

// refuseRETR answers a RETR of message n that the fault refuses; handled
// is false when the message is to be sent, keep false when the connection
// ends.
func (pc *pop3Conn) refuseRETR(n int) (handled, keep bool) {
	switch pc.srv.retrFault(n) {
	case RETRRefuse:
		pc.reply("-ERR Message can't be retrieved.")
		return true, true
	case RETRRefuseHangUp:
		pc.reply("-ERR Message can't be retrieved.")
		return true, false
	case RETRStall:
		raw := pc.msgs[n-1].raw
		resp := append(fmt.Appendf(nil, "+OK %d octets\r\n", len(raw)), stuff(raw)...)
		_, _ = pc.c.Write(resp[:len(resp)/2])
		_, _ = io.Copy(io.Discard, pc.r) // until the client hangs up
		return true, false
	}
	return false, true
}
