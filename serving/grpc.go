package serving

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/driftline/driftline/internal/buildinfo"
	"github.com/driftline/driftline/serving/oippb"
)

// The Open Inference Protocol v2 over gRPC (KServe's GRPCInferenceService): the same
// decoding of input tensors, scoring core, routing, explanations, prediction log and request
// metrics as REST. Errors are gRPC statuses: INVALID_ARGUMENT naming the input, NOT_FOUND for
// a model or version not served here, UNAVAILABLE before a production version is loaded.

// GRPCServer returns a gRPC server with the inference service and server reflection (so
// grpcurl and other reflective clients list and call it).
func (s *Server) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	// With tracing, every call is a server span (a traceparent in the metadata is its parent).
	if s.opts.Tracing {
		opts = append([]grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler())}, opts...)
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(grpcBudget(s.budget)))
	g := grpc.NewServer(opts...)
	oippb.RegisterGRPCInferenceServiceServer(g, &grpcInference{s: s})
	reflection.Register(g)
	return g
}

type grpcInference struct {
	oippb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func (g *grpcInference) ServerLive(context.Context, *oippb.ServerLiveRequest) (*oippb.ServerLiveResponse, error) {
	return &oippb.ServerLiveResponse{Live: true}, nil
}

func (g *grpcInference) ServerReady(context.Context, *oippb.ServerReadyRequest) (*oippb.ServerReadyResponse, error) {
	return &oippb.ServerReadyResponse{Ready: g.s.allReady()}, nil
}

func (g *grpcInference) ServerMetadata(context.Context, *oippb.ServerMetadataRequest) (*oippb.ServerMetadataResponse, error) {
	return &oippb.ServerMetadataResponse{Name: "driftline", Version: buildinfo.Revision(), Extensions: v2Extensions}, nil
}

// table is the model's serving table and the version the request names (nil: none).
func (g *grpcInference) table(name, version string) (*table, *loaded, error) {
	wt, ok := g.s.watchers[name]
	if !ok {
		return nil, nil, status.Errorf(codes.NotFound, "unknown model %q", name)
	}
	t := wt.current.Load()
	if t.production == nil {
		return nil, nil, status.Errorf(codes.Unavailable, "model %q has no production version loaded yet", name)
	}
	l, err := t.version(name, version)
	if err != nil {
		return nil, nil, grpcStatus(err)
	}
	return t, l, nil
}

func (g *grpcInference) ModelReady(_ context.Context, req *oippb.ModelReadyRequest) (*oippb.ModelReadyResponse, error) {
	_, _, err := g.table(req.GetName(), req.GetVersion())
	if status.Code(err) == codes.Unavailable {
		return &oippb.ModelReadyResponse{Ready: false}, nil
	}
	if err != nil {
		return nil, err
	}
	return &oippb.ModelReadyResponse{Ready: true}, nil
}

func (g *grpcInference) ModelMetadata(_ context.Context, req *oippb.ModelMetadataRequest) (*oippb.ModelMetadataResponse, error) {
	t, l, err := g.table(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	versions := []string{strconv.Itoa(t.production.version)}
	if t.canary != nil {
		versions = append(versions, strconv.Itoa(t.canary.version))
	}
	if l == nil {
		l = t.production
	} else {
		versions = []string{strconv.Itoa(l.version)}
	}
	out := &oippb.ModelMetadataResponse{Name: req.GetName(), Versions: versions, Platform: "driftline",
		Outputs: []*oippb.ModelMetadataResponse_TensorMetadata{{Name: "prediction", Datatype: "FP64", Shape: []int64{-1}}}}
	for _, f := range l.model.Features {
		out.Inputs = append(out.Inputs, &oippb.ModelMetadataResponse_TensorMetadata{Name: f, Datatype: "FP64", Shape: []int64{-1}})
	}
	return out, nil
}

func (g *grpcInference) ModelInfer(ctx context.Context, req *oippb.ModelInferRequest) (*oippb.ModelInferResponse, error) {
	start := time.Now()
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() { // as REST's X-Trace-Id
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-trace-id", sc.TraceID().String()))
	}
	resp, a, err := g.infer(ctx, req, start)
	// The request metrics REST counts, under the HTTP status the gRPC code stands for.
	if _, served := g.s.watchers[req.GetModelName()]; served {
		o := g.s.series(seriesKey{req.GetModelName(), a.Version, a.Route, grpcHTTPCode(err)})
		o.requests.Inc()
		if o.latency != nil {
			o.latency.Observe(time.Since(start).Seconds())
		}
	}
	return resp, err
}

func (g *grpcInference) infer(ctx context.Context, req *oippb.ModelInferRequest, start time.Time) (*oippb.ModelInferResponse, ScoreResult, error) {
	t, pinned, err := g.table(req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, ScoreResult{}, err
	}
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, ScoreResult{}, status.Errorf(codes.InvalidArgument, "raw_input_contents: %d entries for %d inputs (one per input)", len(raw), len(req.GetInputs()))
	}
	inputs := make([]v2Input, len(req.GetInputs()))
	for i, in := range req.GetInputs() {
		var r []byte
		if len(raw) > 0 {
			r = raw[i]
			if in.GetContents() != nil {
				return nil, ScoreResult{}, status.Errorf(codes.InvalidArgument, "inputs[%d] (%s): contents and raw_input_contents both given", i, in.GetName())
			}
		}
		inputs[i] = grpcInput(in, r)
	}
	c := v2Call{model: req.GetModelName(), table: t, pinned: pinned, id: req.GetId(), inputs: inputs, start: start}
	if pinned != nil {
		c.version = pinned.version
	}
	for k, p := range req.GetParameters() {
		switch v := p.GetParameterChoice().(type) {
		case *oippb.InferParameter_StringParam:
			if k == "routing_key" {
				c.routingKey = v.StringParam
				continue
			}
			if c.attrs == nil {
				c.attrs = map[string]string{}
			}
			c.attrs[k] = v.StringParam
		case *oippb.InferParameter_BoolParam:
			if k == "explain" {
				c.explain = v.BoolParam
			}
		}
	}
	resp, a, err := g.s.v2Score(ctx, c)
	if err != nil {
		return nil, a, grpcStatus(err)
	}
	out := &oippb.ModelInferResponse{ModelName: resp.ModelName, ModelVersion: resp.ModelVersion, Id: resp.ID,
		Parameters: map[string]*oippb.InferParameter{"route": stringParam(string(a.Route))}}
	if a.Fallback != "" {
		out.Parameters["fallback"] = stringParam(a.Fallback)
	}
	if id, ok := resp.Parameters["request_id"].(string); ok {
		out.Parameters["request_id"] = stringParam(id)
	}
	if tok, ok := resp.Parameters["label_token"].(string); ok {
		out.Parameters["label_token"] = stringParam(tok)
	}
	for _, o := range resp.Outputs {
		out.Outputs = append(out.Outputs, &oippb.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: "FP64",
			Shape: []int64{int64(len(o.Data))}, Contents: &oippb.InferTensorContents{Fp64Contents: o.Data}})
	}
	// A batch's label tokens, one per row: a BYTES output (parameters hold one value each).
	if toks, ok := resp.Parameters["label_tokens"].([]string); ok {
		b := make([][]byte, len(toks))
		for i, tok := range toks {
			b[i] = []byte(tok)
		}
		out.Outputs = append(out.Outputs, &oippb.ModelInferResponse_InferOutputTensor{Name: "label_token", Datatype: "BYTES",
			Shape: []int64{int64(len(b))}, Contents: &oippb.InferTensorContents{BytesContents: b}})
	}
	return out, a, nil
}

func stringParam(s string) *oippb.InferParameter {
	return &oippb.InferParameter{ParameterChoice: &oippb.InferParameter_StringParam{StringParam: s}}
}

// grpcInput reads a gRPC tensor: the contents field of its datatype, or its raw bytes
// (little-endian, BYTES as 4-byte length-prefixed strings).
func grpcInput(t *oippb.ModelInferRequest_InferInputTensor, raw []byte) v2Input {
	in := v2Input{name: t.GetName(), datatype: t.GetDatatype()}
	for _, d := range t.GetShape() {
		in.shape = append(in.shape, int(max(min(d, math.MaxInt32), -1)))
	}
	c := t.GetContents()
	dt := v2Datatypes[in.datatype]
	checked := func(v float64) (float64, error) {
		if v < dt.min || v > dt.max {
			return 0, fmt.Errorf("%v is out of the range of %s", v, in.datatype)
		}
		return v, nil
	}
	if raw != nil {
		return rawInput(in, raw, checked)
	}
	var n int
	var num func(j int) float64
	switch in.datatype {
	case "FP64":
		n, num = len(c.GetFp64Contents()), func(j int) float64 { return c.GetFp64Contents()[j] }
	case "FP32", "FP16":
		n, num = len(c.GetFp32Contents()), func(j int) float64 { return float64(c.GetFp32Contents()[j]) }
	case "INT8", "INT16", "INT32":
		n, num = len(c.GetIntContents()), func(j int) float64 { return float64(c.GetIntContents()[j]) }
	case "INT64":
		n, num = len(c.GetInt64Contents()), func(j int) float64 { return float64(c.GetInt64Contents()[j]) }
	case "UINT8", "UINT16", "UINT32":
		n, num = len(c.GetUintContents()), func(j int) float64 { return float64(c.GetUintContents()[j]) }
	case "UINT64":
		n, num = len(c.GetUint64Contents()), func(j int) float64 { return float64(c.GetUint64Contents()[j]) }
	case "BOOL":
		n, num = len(c.GetBoolContents()), func(j int) float64 {
			if c.GetBoolContents()[j] {
				return 1
			}
			return 0
		}
	case "BYTES":
		n = len(c.GetBytesContents())
	}
	in.values = func() (int, error) { return n, nil }
	in.num = func(j int) (float64, error) { return checked(num(j)) }
	in.text = func(j int) (string, error) { return string(c.GetBytesContents()[j]), nil }
	return in
}

// rawInput reads raw_input_contents: fixed-size little-endian values, or BYTES as a 4-byte
// little-endian length and the bytes, one after the other.
func rawInput(in v2Input, raw []byte, checked func(float64) (float64, error)) v2Input {
	size := map[string]int{"FP64": 8, "FP32": 4, "INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "UINT8": 1, "UINT16": 2, "UINT32": 4,
		"UINT64": 8, "BOOL": 1}[in.datatype]
	if in.datatype == "BYTES" {
		var texts []string
		in.values = func() (int, error) {
			for i := 0; i < len(raw); {
				if len(raw)-i < 4 {
					return 0, fmt.Errorf("raw_input_contents: a BYTES length at byte %d runs past the end (%d bytes)", i, len(raw))
				}
				l := int(binary.LittleEndian.Uint32(raw[i:]))
				i += 4
				if l > len(raw)-i {
					return 0, fmt.Errorf("raw_input_contents: a BYTES value of %d bytes at byte %d runs past the end (%d bytes)", l, i, len(raw))
				}
				texts = append(texts, string(raw[i:i+l]))
				i += l
			}
			return len(texts), nil
		}
		in.text = func(j int) (string, error) { return texts[j], nil }
		return in
	}
	in.values = func() (int, error) {
		if size == 0 {
			return 0, fmt.Errorf("raw_input_contents: datatype %q has no raw form here (want %s)", in.datatype, v2DatatypeList)
		}
		if len(raw)%size != 0 {
			return 0, fmt.Errorf("raw_input_contents: %d bytes is not a whole number of %d-byte %s values", len(raw), size, in.datatype)
		}
		return len(raw) / size, nil
	}
	in.num = func(j int) (float64, error) {
		b := raw[j*size : (j+1)*size]
		var v float64
		switch in.datatype {
		case "FP64":
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		case "FP32":
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case "INT8":
			v = float64(int8(b[0]))
		case "INT16":
			v = float64(int16(binary.LittleEndian.Uint16(b)))
		case "INT32":
			v = float64(int32(binary.LittleEndian.Uint32(b)))
		case "INT64":
			v = float64(int64(binary.LittleEndian.Uint64(b)))
		case "UINT8", "BOOL":
			v = float64(b[0])
		case "UINT16":
			v = float64(binary.LittleEndian.Uint16(b))
		case "UINT32":
			v = float64(binary.LittleEndian.Uint32(b))
		case "UINT64":
			v = float64(binary.LittleEndian.Uint64(b))
		}
		return checked(v)
	}
	return in
}

// grpcStatus maps a scoring error to its gRPC status.
func grpcStatus(err error) error {
	var se *ScoreError
	if errors.As(err, &se) {
		switch se.Kind {
		case ErrUnknownModel:
			return status.Error(codes.NotFound, se.Msg)
		case ErrNotReady:
			return status.Error(codes.Unavailable, se.Msg)
		case ErrTooLarge:
			return status.Error(codes.ResourceExhausted, se.Msg)
		}
		return status.Error(codes.InvalidArgument, se.Msg)
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// grpcHTTPCode is the HTTP status a gRPC outcome is counted under.
func grpcHTTPCode(err error) int {
	switch status.Code(err) {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Canceled:
		return 499
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
