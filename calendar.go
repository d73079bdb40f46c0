package kisfeed

// ErrNoCalendar marks a day a [Source] cannot judge: its trading calendar
// is the built-in KRX holiday table (package krx), and the day lies outside
// the years the table covers, where a weekday may be a holiday nobody told
// us about. Answering by weekday alone would call such holidays trading
// days, so sources that rely on the table return an error wrapping
// ErrNoCalendar instead, worded like
//
//	no trading calendar for 2031-01-01: the built-in KRX calendar covers 2020–2027
//
// It also matches [ErrInvalid]: the question cannot be answered however
// often it is asked, so it is never retried, never trips a circuit breaker,
// and is a business error ([IsBusinessError]). Check for ErrNoCalendar
// before ErrInvalid where the two are told apart (the HTTP API answers 422
// for it, 400 for other invalid input).
var ErrNoCalendar error = noCalendarError{}

type noCalendarError struct{}

func (noCalendarError) Error() string { return "no trading calendar" }

// Is makes errors.Is(err, ErrInvalid) true.
func (noCalendarError) Is(target error) bool { return target == ErrInvalid }
