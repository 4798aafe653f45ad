package serving

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/serving/oippb"
)

func grpcClient(t *testing.T, s *Server) oippb.GRPCInferenceServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := s.GRPCServer()
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return oippb.NewGRPCInferenceServiceClient(conn)
}

func fp32(name string, shape []int64, v ...float32) *oippb.ModelInferRequest_InferInputTensor {
	return &oippb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "FP32", Shape: shape, Contents: &oippb.InferTensorContents{Fp32Contents: v}}
}

// The gRPC service (KServe's GRPCInferenceService) through a client generated from the same
// proto, over TCP: health, metadata, the [N, F] and per-feature tensors, raw_input_contents,
// BYTES attributes, explanations, version pinning, the prediction log and request metrics
// shared with REST, and each error as its gRPC status with a message naming the input.
func TestGRPCInferenceService(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	c := grpcClient(t, s)

	live, err := c.ServerLive(ctx, &oippb.ServerLiveRequest{})
	require.NoError(t, err)
	require.True(t, live.GetLive())
	ready, err := c.ServerReady(ctx, &oippb.ServerReadyRequest{})
	require.NoError(t, err)
	require.False(t, ready.GetReady(), "no production version yet")
	_, err = c.ModelInfer(ctx, &oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("x", []int64{1}, 1)}})
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)

	v1 := register(t, r, "r1", 2, true)
	v2 := register(t, r, "r2", 3, true)
	deploy(t, r, v1, v2, 0)
	require.NoError(t, s.watchers["demand"].poll(ctx))
	ready, err = c.ServerReady(ctx, &oippb.ServerReadyRequest{})
	require.NoError(t, err)
	require.True(t, ready.GetReady())
	meta, err := c.ServerMetadata(ctx, &oippb.ServerMetadataRequest{})
	require.NoError(t, err)
	require.Equal(t, "driftline", meta.GetName())
	require.Contains(t, meta.GetExtensions(), "version_routing")
	mm, err := c.ModelMetadata(ctx, &oippb.ModelMetadataRequest{Name: "demand"})
	require.NoError(t, err)
	require.Equal(t, []string{"1", "2"}, mm.GetVersions())
	require.Equal(t, "x", mm.GetInputs()[0].GetName())
	mr, err := c.ModelReady(ctx, &oippb.ModelReadyRequest{Name: "demand", Version: "2"})
	require.NoError(t, err)
	require.True(t, mr.GetReady())

	preds := func(resp *oippb.ModelInferResponse) []float64 {
		out := []float64{}
		for _, x := range resp.GetOutputs()[0].GetContents().GetFp64Contents() {
			out = append(out, math.Round(x*1e6)/1e6)
		}
		return out
	}
	// One [2, 2] FP32 tensor in the model's feature order, explained.
	resp, err := c.ModelInfer(ctx, &oippb.ModelInferRequest{ModelName: "demand", Id: "g-1",
		Inputs:     []*oippb.ModelInferRequest_InferInputTensor{fp32("input-0", []int64{2, 2}, 1, 2, 3, 4)},
		Parameters: map[string]*oippb.InferParameter{"explain": {ParameterChoice: &oippb.InferParameter_BoolParam{BoolParam: true}}}})
	require.NoError(t, err)
	// The protocol's id is echoed; the server's id (the log's, the labels') is request_id.
	clientOf := map[string]string{}
	seen := func(resp *oippb.ModelInferResponse, id string) {
		require.Equal(t, id, resp.GetId())
		server := resp.GetParameters()["request_id"].GetStringParam()
		require.Len(t, server, 32)
		clientOf[server] = id
	}
	seen(resp, "g-1")
	require.Equal(t, []float64{4, 10}, preds(resp))
	require.Equal(t, "1", resp.GetModelVersion())
	require.Equal(t, "production", resp.GetParameters()["route"].GetStringParam())
	names := []string{}
	for _, o := range resp.GetOutputs() {
		names = append(names, o.GetName())
	}
	require.Equal(t, []string{"prediction", "base_value", "shap_x", "shap_z", "label_token"}, names, "explanations, then a batch's label tokens")
	for i := range 2 {
		sum := resp.GetOutputs()[1].GetContents().GetFp64Contents()[i] + resp.GetOutputs()[2].GetContents().GetFp64Contents()[i] +
			resp.GetOutputs()[3].GetContents().GetFp64Contents()[i]
		require.InDelta(t, resp.GetOutputs()[0].GetContents().GetFp64Contents()[i], sum, 1e-9)
	}
	require.Len(t, resp.GetOutputs()[4].GetContents().GetBytesContents(), 2)

	// Per-feature tensors as raw little-endian bytes; a BYTES attribute.
	raw := func(vs ...float64) []byte {
		b := make([]byte, 8*len(vs))
		for i, v := range vs {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
		return b
	}
	text := func(s string) []byte { return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...) }
	resp, err = c.ModelInfer(ctx, &oippb.ModelInferRequest{ModelName: "demand", Id: "g-raw",
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{1}}, {Name: "z", Datatype: "FP64", Shape: []int64{1}},
			{Name: "region", Datatype: "BYTES", Shape: []int64{1}}},
		RawInputContents: [][]byte{raw(2), raw(1), text("north")}})
	require.NoError(t, err)
	seen(resp, "g-raw")
	require.Equal(t, []float64{5}, preds(resp))
	require.NotEmpty(t, resp.GetParameters()["label_token"].GetStringParam())

	// Pinned to the canary's version.
	resp, err = c.ModelInfer(ctx, &oippb.ModelInferRequest{ModelName: "demand", ModelVersion: "2", Id: "g-pin",
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("input-0", []int64{1, 2}, 2, 1)}})
	require.NoError(t, err)
	seen(resp, "g-pin")
	require.Equal(t, []float64{7}, preds(resp))
	require.Equal(t, "2", resp.GetModelVersion())
	require.Equal(t, "pinned", resp.GetParameters()["route"].GetStringParam())

	for _, e := range []struct {
		req  *oippb.ModelInferRequest
		code codes.Code
		want string
	}{
		{&oippb.ModelInferRequest{ModelName: "nope"}, codes.NotFound, `unknown model "nope"`},
		{&oippb.ModelInferRequest{ModelName: "demand", ModelVersion: "9"}, codes.NotFound, "version 9 is not served here (production v1, canary v2)"},
		{&oippb.ModelInferRequest{ModelName: "demand"}, codes.InvalidArgument, "at least one input tensor"},
		{&oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("input-0", []int64{1, 3}, 1, 2, 3)}},
			codes.InvalidArgument, "inputs[0] (input-0): shape [1 3]: an [N, F] tensor holds the model's 2 features in order (x, z): want [N, 2]"},
		{&oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("x", []int64{2}, 1)}},
			codes.InvalidArgument, "inputs[0] (x): shape [2] holds 2 values, data has 1"},
		{&oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "STRING", Shape: []int64{1}}}},
			codes.InvalidArgument, `inputs[0] (x): datatype "STRING"`},
		{&oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "INT8", Shape: []int64{1},
			Contents: &oippb.InferTensorContents{IntContents: []int32{300}}}}}, codes.InvalidArgument, "inputs[0] (x) data[0]: 300 is out of the range of INT8"},
		{&oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{1}}},
			RawInputContents: [][]byte{{1, 2, 3}}}, codes.InvalidArgument, "3 bytes is not a whole number of 8-byte FP64 values"},
		{&oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{1}}},
			RawInputContents: [][]byte{raw(1), raw(2)}}, codes.InvalidArgument, "raw_input_contents: 2 entries for 1 inputs"},
		{&oippb.ModelInferRequest{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("x", []int64{1}, 1)}},
			codes.InvalidArgument, `missing feature "z"`},
	} {
		_, err := c.ModelInfer(ctx, e.req)
		require.Equal(t, e.code, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), e.want)
	}

	// The prediction log and the request metrics are REST's.
	_, metrics := getText(t, ts.URL+"/metrics")
	require.Contains(t, metrics, `driftline_serving_requests_total{code="200",model="demand",route="pinned",version="2"} 1`)
	require.Contains(t, metrics, `driftline_serving_requests_total{code="400",model="demand",route="",version=""} 7`)
	s.Close()
	recs, err := predlog.Read(ctx, b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	got := map[string]string{}
	for _, rec := range recs {
		id, row, batch := strings.Cut(rec.RequestID, "/")
		if c, ok := clientOf[id]; ok {
			if batch {
				c += "/" + row
			}
			got[c] = rec.Route + " " + rec.Attributes
		}
	}
	require.Equal(t, map[string]string{"g-1/0": "production ", "g-1/1": "production ", "g-raw": `production {"region":"north"}`, "g-pin": "pinned "}, got)
}

// Server reflection, as grpcurl uses it: the service is listed and its proto resolves.
func TestGRPCReflection(t *testing.T) {
	ctx := context.Background()
	s, _ := newServer(t, objstore.NewMem())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := s.GRPCServer()
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	var services []string
	for _, sv := range resp.GetListServicesResponse().GetService() {
		services = append(services, sv.GetName())
	}
	require.Contains(t, services, "inference.GRPCInferenceService")
	require.NoError(t, stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{
		FileContainingSymbol: "inference.GRPCInferenceService"}}))
	resp, err = stream.Recv()
	require.NoError(t, err)
	require.NotEmpty(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto())
	require.NoError(t, stream.CloseSend())
	_, err = stream.Recv()
	require.ErrorIs(t, err, io.EOF)
}

// Any ModelInferRequest: the service answers or refuses with INVALID_ARGUMENT or NOT_FOUND
// and a message, never panics.
func FuzzGRPCInfer(f *testing.F) {
	for _, req := range []*oippb.ModelInferRequest{
		{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("input-0", []int64{1, 1}, 2)}},
		{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP64", Shape: []int64{1}}}, RawInputContents: [][]byte{make([]byte, 8)}},
		{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "r", Datatype: "BYTES", Shape: []int64{1}}}, RawInputContents: [][]byte{{5, 0, 0, 0, 'a'}}},
		{ModelName: "demand", ModelVersion: "1"}, {ModelName: "other"},
		{ModelName: "demand", Inputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "UINT8", Shape: []int64{1 << 22}}}, RawInputContents: [][]byte{make([]byte, 1<<22)}},
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	g := &grpcInference{s: fuzzServer(f)}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req oippb.ModelInferRequest
		if proto.Unmarshal(body, &req) != nil {
			return
		}
		var err error
		if used := allocated(func() { _, err = g.ModelInfer(context.Background(), &req) }); used > allocationBound(len(body)) {
			t.Fatalf("a %d-byte request allocated %d bytes", len(body), used)
		}
		switch status.Code(err) {
		case codes.OK, codes.NotFound, codes.ResourceExhausted:
		case codes.InvalidArgument:
			if status.Convert(err).Message() == "" {
				t.Fatal("INVALID_ARGUMENT without a message")
			}
		default:
			t.Fatalf("%v for %v", err, &req)
		}
	})
}

func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
