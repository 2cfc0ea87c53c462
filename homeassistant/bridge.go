package homeassistant

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// BridgeOptions configures a Bridge.
type BridgeOptions struct {
	Options
	// Broker is the broker's URL (tcp://host:1883, ssl://..., ws://...).
	Broker string
	// Username and Password sign the bridge in to the broker.
	Username, Password string
	// ClientID is the bridge's MQTT client ID.
	ClientID string
	// Enabled false publishes the removal of every entity and stops.
	Enabled bool
	// Principal names whoever presses the open-door button in the door's
	// log ("homeassistant").
	Principal string
	// OnOpen opens the door through the same path as a phone's Open door;
	// it is called on the bridge's own goroutine, never in an MQTT handler.
	OnOpen func(by string)
	// MinOpenInterval drops presses that come faster than this (default
	// 1 s): a flood of presses costs the door one log line each second.
	MinOpenInterval time.Duration
	Logger          *slog.Logger
}

// Bridge keeps the door station's entities current on one broker.
type Bridge struct {
	o         BridgeOptions
	client    paho.Client
	log       *slog.Logger
	in        chan func()
	done      chan struct{}
	cancel    context.CancelFunc
	closeOnce sync.Once

	// loop's own state.
	call     string
	link     bool
	snapshot []byte
	lastOpen time.Time
}

// Start connects to the broker and serves until Close. A broker that is
// down is retried in the background.
func Start(ctx context.Context, o BridgeOptions) (*Bridge, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinOpenInterval == 0 {
		o.MinOpenInterval = time.Second
	}
	if o.Principal == "" {
		o.Principal = "homeassistant"
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &Bridge{o: o, log: o.Logger.With("component", "homeassistant"), in: make(chan func(), 64),
		done: make(chan struct{}), cancel: cancel, call: "idle"}
	po := paho.NewClientOptions().AddBroker(o.Broker).SetClientID(o.ClientID).
		SetUsername(o.Username).SetPassword(o.Password).
		SetOrderMatters(false).SetConnectRetry(true).SetAutoReconnect(true).
		SetConnectRetryInterval(2 * time.Second).SetMaxReconnectInterval(30 * time.Second)
	if o.Enabled {
		po.SetWill(o.AvailabilityTopic(), Offline, 1, true)
	}
	po.SetOnConnectHandler(func(paho.Client) { b.post(b.connected) })
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		b.log.Warn("broker connection lost", "err", err)
	})
	b.client = paho.NewClient(po)
	b.client.Connect() // retried in the background
	go b.loop(ctx)
	return b, nil
}

// post hands fn to the loop; it never blocks an MQTT handler.
func (b *Bridge) post(fn func()) {
	select {
	case b.in <- fn:
	default:
		b.log.Warn("bridge busy, dropping an update")
	}
}

func (b *Bridge) loop(ctx context.Context) {
	defer close(b.done)
	for {
		select {
		case <-ctx.Done():
			return
		case fn := <-b.in:
			fn()
		}
	}
}

func (b *Bridge) connected() {
	if !b.o.Enabled {
		for _, m := range b.o.Removal() {
			b.publish(m.Topic, m.Payload, true)
		}
		b.publish(b.o.AvailabilityTopic(), nil, true)
		b.log.Info("removed Home Assistant discovery")
		return
	}
	b.client.Subscribe(b.o.StatusTopic(), 1, func(_ paho.Client, m paho.Message) {
		if string(m.Payload()) == Online {
			b.post(b.announce)
		}
	})
	b.client.Subscribe(b.o.DoorTopic(), 1, func(_ paho.Client, m paho.Message) {
		if string(m.Payload()) == PayloadPress {
			b.post(b.press)
		}
	})
	b.announce()
	b.verify()
}

// verifyWait is how long discovery may take to come back from the broker.
const verifyWait = 5 * time.Second

// verify reads the first discovery message back from the broker: MQTT 3.1.1
// brokers (Mosquitto among them) acknowledge a publication their ACL drops,
// so only reading it back tells that Home Assistant will not see it.
func (b *Bridge) verify() {
	topic := b.o.Discovery()[0].Topic
	var seen atomic.Bool
	b.client.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		if len(m.Payload()) > 0 {
			seen.Store(true)
		}
	})
	time.AfterFunc(verifyWait, func() {
		b.post(func() {
			b.client.Unsubscribe(topic)
			if !seen.Load() {
				b.log.Warn("the broker refused Home Assistant discovery topics; the door works, Home Assistant will not see it",
					"topic", topic, "user", b.o.Username)
			}
		})
	})
}

// announce publishes discovery, availability and the current state.
func (b *Bridge) announce() {
	for _, m := range b.o.Discovery() {
		b.publish(m.Topic, m.Payload, true)
	}
	b.publish(b.o.AvailabilityTopic(), []byte(Online), true)
	b.publishState()
	if b.snapshot != nil {
		b.publish(b.o.SnapshotTopic(), b.snapshot, true)
	}
}

func (b *Bridge) publishState() {
	b.publish(b.o.CallTopic(), []byte(b.call), true)
	link := "OFF"
	if b.link {
		link = "ON"
	}
	b.publish(b.o.LinkTopic(), []byte(link), true)
}

func (b *Bridge) press() {
	now := time.Now()
	if !b.lastOpen.IsZero() && now.Sub(b.lastOpen) < b.o.MinOpenInterval {
		return
	}
	b.lastOpen = now
	if b.o.OnOpen != nil {
		b.o.OnOpen(b.o.Principal)
	}
}

// publish sends one QoS 1 message and reports whether the broker took it.
func (b *Bridge) publish(topic string, payload []byte, retain bool) bool {
	t := b.client.Publish(topic, 1, retain, payload)
	if !t.WaitTimeout(5*time.Second) || t.Error() != nil {
		b.log.Debug("publish failed", "topic", topic, "err", t.Error())
		return false
	}
	return true
}

// Ring publishes the ring event. A nil Bridge does nothing, as for every
// method below.
func (b *Bridge) Ring() {
	if b == nil {
		return
	}
	b.post(func() { b.publish(b.o.EventTopic(), EventPayload(EventRing), false) })
}

// Snapshot publishes the JPEG picture of the last ring (retained).
func (b *Bridge) Snapshot(jpeg []byte) {
	if b == nil {
		return
	}
	b.post(func() {
		b.snapshot = jpeg
		b.publish(b.o.SnapshotTopic(), jpeg, true)
	})
}

// Outcome publishes the call's outcome: EventAnswered, EventMissed or
// EventDeclined.
func (b *Bridge) Outcome(eventType string) {
	if b == nil {
		return
	}
	b.post(func() { b.publish(b.o.EventTopic(), EventPayload(eventType), false) })
}

// CallState reports the call sensor's state (one of CallStates).
func (b *Bridge) CallState(s string) {
	if b == nil {
		return
	}
	b.post(func() {
		if s != b.call {
			b.call = s
			b.publishState()
		}
	})
}

// Link reports whether signaling is connected.
func (b *Bridge) Link(up bool) {
	if b == nil {
		return
	}
	b.post(func() {
		if up != b.link {
			b.link = up
			b.publishState()
		}
	})
}

// Close says offline and disconnects.
func (b *Bridge) Close() {
	if b == nil {
		return
	}
	b.closeOnce.Do(func() {
		b.cancel()
		<-b.done
		if b.o.Enabled && b.client.IsConnected() {
			b.publish(b.o.AvailabilityTopic(), []byte(Offline), true)
		}
		b.client.Disconnect(250)
	})
}
