package io.cryptenlite.edge;

import com.google.protobuf.ByteString;
import crypten_lite.v1.EdgeGrpc;
import crypten_lite.v1.EdgeOuterClass.AdvertiseRequest;
import crypten_lite.v1.EdgeOuterClass.InferReply;
import crypten_lite.v1.EdgeOuterClass.InferRequest;
import crypten_lite.v1.EdgeOuterClass.MaskedInputRequest;
import crypten_lite.v1.EdgeOuterClass.RoundInfoReply;
import crypten_lite.v1.EdgeOuterClass.RoundInfoRequest;
import crypten_lite.v1.EdgeOuterClass.SecAggAck;
import crypten_lite.v1.EdgeOuterClass.SecAggStateReply;
import crypten_lite.v1.EdgeOuterClass.SecAggStateRequest;
import crypten_lite.v1.EdgeOuterClass.ShareKeysRequest;
import crypten_lite.v1.EdgeOuterClass.SubmitReply;
import crypten_lite.v1.EdgeOuterClass.SubmitRequest;
import crypten_lite.v1.EdgeOuterClass.UnmaskRequest;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A scriptable Edge service for tests: each method calls a handler that returns the reply or
 * throws a {@link StatusRuntimeException}; requests and call headers are recorded.
 */
class FakeEdge extends EdgeGrpc.EdgeImplBase {
  interface Handler<Q, R> {
    R handle(Q request, int call) throws Exception;
  }

  volatile Handler<RoundInfoRequest, RoundInfoReply> roundInfo =
      (request, call) -> { throw Status.UNIMPLEMENTED.asRuntimeException(); };
  volatile Handler<SubmitRequest, SubmitReply> submit =
      (request, call) -> SubmitReply.getDefaultInstance();
  volatile Handler<InferRequest, InferReply> infer =
      (request, call) -> { throw Status.UNIMPLEMENTED.asRuntimeException(); };

  volatile Handler<SecAggStateRequest, SecAggStateReply> secAggState =
      (request, call) -> { throw Status.UNIMPLEMENTED.asRuntimeException(); };
  volatile Handler<AdvertiseRequest, SecAggAck> advertise =
      (request, call) -> SecAggAck.getDefaultInstance();
  volatile Handler<ShareKeysRequest, SecAggAck> shareKeys =
      (request, call) -> SecAggAck.getDefaultInstance();
  volatile Handler<MaskedInputRequest, SecAggAck> submitMasked =
      (request, call) -> SecAggAck.getDefaultInstance();
  volatile Handler<UnmaskRequest, SecAggAck> unmask =
      (request, call) -> SecAggAck.getDefaultInstance();
  /** Every SecAgg request in arrival order. */
  final List<Object> secAggRequests = Collections.synchronizedList(new ArrayList<>());
  final AtomicInteger secAggCalls = new AtomicInteger();

  final AtomicInteger roundInfoCalls = new AtomicInteger();
  final AtomicInteger submitCalls = new AtomicInteger();
  final AtomicInteger inferCalls = new AtomicInteger();
  final List<SubmitRequest> submits = Collections.synchronizedList(new ArrayList<>());
  final List<InferRequest> infers = Collections.synchronizedList(new ArrayList<>());
  final List<Metadata> headers = Collections.synchronizedList(new ArrayList<>());

  static RoundInfoReply.Builder round(long round, String state, int index, int servers) {
    return RoundInfoReply.newBuilder()
        .setJobId("job-1")
        .setRound(round)
        .setState(state)
        .setNumElements(4)
        .setRingBits(32)
        .setQuantScheme("int16")
        .setQuantClip(1.0)
        .setNumServers(servers)
        .setServerIndex(index)
        .setMinClients(1)
        .setModel(ByteString.copyFrom(new byte[] {0, 0, (byte) 0x80, 0x3F})); // 1.0f
  }

  @Override
  public void roundInfo(RoundInfoRequest request, StreamObserver<RoundInfoReply> out) {
    respond(roundInfo, request, roundInfoCalls.incrementAndGet(), out);
  }

  @Override
  public void submit(SubmitRequest request, StreamObserver<SubmitReply> out) {
    submits.add(request);
    respond(submit, request, submitCalls.incrementAndGet(), out);
  }

  @Override
  public void infer(InferRequest request, StreamObserver<InferReply> out) {
    infers.add(request);
    respond(infer, request, inferCalls.incrementAndGet(), out);
  }

  @Override
  public void secAggState(SecAggStateRequest request, StreamObserver<SecAggStateReply> out) {
    secAggRequests.add(request);
    respond(secAggState, request, secAggCalls.incrementAndGet(), out);
  }

  @Override
  public void advertise(AdvertiseRequest request, StreamObserver<SecAggAck> out) {
    secAggRequests.add(request);
    respond(advertise, request, secAggCalls.incrementAndGet(), out);
  }

  @Override
  public void shareKeys(ShareKeysRequest request, StreamObserver<SecAggAck> out) {
    secAggRequests.add(request);
    respond(shareKeys, request, secAggCalls.incrementAndGet(), out);
  }

  @Override
  public void submitMasked(MaskedInputRequest request, StreamObserver<SecAggAck> out) {
    secAggRequests.add(request);
    respond(submitMasked, request, secAggCalls.incrementAndGet(), out);
  }

  @Override
  public void unmask(UnmaskRequest request, StreamObserver<SecAggAck> out) {
    secAggRequests.add(request);
    respond(unmask, request, secAggCalls.incrementAndGet(), out);
  }

  private static <Q, R> void respond(Handler<Q, R> handler, Q request, int call, StreamObserver<R> out) {
    R reply;
    try {
      reply = handler.handle(request, call);
    } catch (StatusRuntimeException err) {
      out.onError(err);
      return;
    } catch (Exception err) {
      out.onError(Status.INTERNAL.withDescription("internal error").asRuntimeException());
      return;
    }
    out.onNext(reply);
    out.onCompleted();
  }

  ServerInterceptor headerRecorder() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata metadata, ServerCallHandler<Q, R> next) {
        headers.add(metadata);
        return next.startCall(call, metadata);
      }
    };
  }

  /** An in-process server for this service (closed with the returned handle). */
  InProcess start() throws IOException {
    String name = InProcessServerBuilder.generateName();
    Server server =
        InProcessServerBuilder.forName(name)
            .addService(ServerInterceptors.intercept(this, headerRecorder()))
            .build()
            .start();
    return new InProcess(server, name);
  }

  static final class InProcess implements AutoCloseable {
    final Server server;
    final String name;

    InProcess(Server server, String name) {
      this.server = server;
      this.name = name;
    }

    ManagedChannel channel() {
      return InProcessChannelBuilder.forName(name).build();
    }

    ServerLink link(LinkOptions options) {
      return new ServerLink("fake:" + name, channel(), null, options);
    }

    @Override
    public void close() {
      server.shutdownNow();
    }
  }

  static StatusRuntimeException refuse(Status status, String message) {
    return status.withDescription(message).asRuntimeException();
  }
}
