package objectstore

// The minio:// backend, with minio-go v7: MinIO and other S3-compatible
// servers at host:port, path-style addressing, TLS unless ?secure=false.
//
// Credentials are static: Options.Credentials, else EnvAccessKey and
// EnvSecretKey; without either, opening fails. The bucket's region is
// looked up once by minio-go (GetBucketLocation) on first use.
//
// Conditional puts send If-None-Match: * and If-Match: "<etag>" (minio-go's
// PutObjectOptions.SetMatchETagExcept("*") and SetMatchETag) on the request
// that commits the object, PutObject or CompleteMultipartUpload, through
// minio.Core, which MinIO checks under its write lock: atomic, so both
// capabilities are true. A server that ignores those headers would turn
// them into plain puts; for such a server set Options.NoConditionalPuts.
//
// minio-go's own retries are off (MaxRetries 1): retries are the
// policy's (retry.go).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

type minioBackend struct {
	core      minio.Core
	bucket    string
	transport *http.Transport
}

var _ backend = (*minioBackend)(nil)

// NewMinIO opens the minio store at loc (see ParseURL). It makes no
// request: a wrong bucket or credentials show on the first call.
func NewMinIO(loc Location, opts Options) (Store, error) {
	if loc.Scheme != "minio" || loc.Bucket == "" || loc.Host == "" {
		return nil, fmt.Errorf("minio object store: location %s is not a minio bucket", loc)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	creds, err := staticCredentials(opts.Credentials)
	if err != nil {
		return nil, err
	}
	if creds.IsZero() {
		return nil, fmt.Errorf("minio object store %s: no credentials: set %s and %s", loc, EnvAccessKey, EnvSecretKey)
	}
	transport, err := minio.DefaultTransport(loc.Secure)
	if err != nil {
		return nil, fmt.Errorf("minio object store %s: %w", loc, err)
	}
	transport.MaxIdleConns = max(transport.MaxIdleConns, opts.MaxConcurrency)
	transport.MaxIdleConnsPerHost = opts.MaxConcurrency
	client, err := minio.New(loc.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(creds.AccessKey, creds.SecretKey, ""),
		Secure:       loc.Secure,
		Transport:    transport,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		return nil, fmt.Errorf("minio object store %s: %w", loc, err)
	}
	b := &minioBackend{core: minio.Core{Client: client}, bucket: loc.Bucket, transport: transport}
	caps := Capabilities{PutIfAbsent: !opts.NoConditionalPuts, PutIfMatch: !opts.NoConditionalPuts}
	return newNetStore(loc, opts, b, caps), nil
}

func (b *minioBackend) describe(err error) remoteFailure {
	var re minio.ErrorResponse
	if errors.As(err, &re) {
		return remoteFailure{status: re.StatusCode, code: re.Code}
	}
	return remoteFailure{}
}

// condOptions also turns off the SHA-256 payload signature: over plain
// HTTP minio-go otherwise signs every 64 KiB of the body (streaming
// SigV4), which costs more CPU than the upload itself on a small machine.
// Segment objects carry their own CRC32C in the manifest, and TLS (the
// default, secure=true) protects the body in transit.
func condOptions(c putCond) minio.PutObjectOptions {
	o := minio.PutObjectOptions{DisableContentSha256: true}
	if c.ifNoneMatch {
		o.SetMatchETagExcept("*")
	}
	if c.ifMatch != "" {
		o.SetMatchETag(c.ifMatch)
	}
	return o
}

func (b *minioBackend) putObject(ctx context.Context, key string, body []byte, c putCond) (string, error) {
	info, err := b.core.PutObject(ctx, b.bucket, key, bytes.NewReader(body), int64(len(body)), "", "", condOptions(c))
	if err != nil {
		return "", err
	}
	return unquoteETag(info.ETag), nil
}

func (b *minioBackend) createMultipart(ctx context.Context, key string) (string, error) {
	return b.core.NewMultipartUpload(ctx, b.bucket, key, minio.PutObjectOptions{})
}

func (b *minioBackend) uploadPart(ctx context.Context, key, uploadID string, number int, body []byte) (string, error) {
	part, err := b.core.PutObjectPart(ctx, b.bucket, key, uploadID, number, bytes.NewReader(body), int64(len(body)), minio.PutObjectPartOptions{DisableContentSha256: true})
	if err != nil {
		return "", err
	}
	return part.ETag, nil
}

func (b *minioBackend) completeMultipart(ctx context.Context, key, uploadID string, parts []completedPart, c putCond) (string, error) {
	done := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		done[i] = minio.CompletePart{PartNumber: p.number, ETag: p.etag}
	}
	info, err := b.core.CompleteMultipartUpload(ctx, b.bucket, key, uploadID, done, condOptions(c))
	if err != nil {
		return "", err
	}
	return unquoteETag(info.ETag), nil
}

func (b *minioBackend) abortMultipart(ctx context.Context, key, uploadID string) error {
	return b.core.AbortMultipartUpload(ctx, b.bucket, key, uploadID)
}

func (b *minioBackend) head(ctx context.Context, key string) (ObjectInfo, error) {
	st, err := b.core.StatObject(ctx, b.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Key: key, Size: st.Size, ETag: unquoteETag(st.ETag), ModTime: st.LastModified}, nil
}

func (b *minioBackend) get(ctx context.Context, key, rng string) (io.ReadCloser, ObjectInfo, error) {
	var o minio.GetObjectOptions
	if rng != "" {
		o.Set("Range", rng)
	}
	body, st, h, err := b.core.GetObject(ctx, b.bucket, key, o)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	info := ObjectInfo{Key: key, Size: st.Size, ETag: unquoteETag(st.ETag), ModTime: st.LastModified}
	if cr := h.Get("Content-Range"); cr != "" {
		n, ok := parseContentRange(cr)
		if !ok {
			body.Close()
			return nil, ObjectInfo{}, fmt.Errorf("get: unreadable Content-Range %q", cr)
		}
		info.Size = n
	}
	return body, info, nil
}

func (b *minioBackend) list(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, bool, error) {
	noOwner := false
	objects := b.core.ListObjectsIter(ctx, b.bucket, minio.ListObjectsOptions{
		Prefix:     prefix,
		StartAfter: startAfter,
		Recursive:  true,
		MaxKeys:    s3PageSize,
		FetchOwner: &noOwner,
	})
	// The iterator pages on by itself; stopping at a page's worth keeps
	// one request per call, so that the policy retries pages one by one.
	var page []ObjectInfo
	for o := range objects {
		if o.Err != nil {
			return nil, false, o.Err
		}
		page = append(page, ObjectInfo{Key: o.Key, Size: o.Size, ETag: unquoteETag(o.ETag), ModTime: o.LastModified})
		if len(page) == s3PageSize {
			return page, true, nil
		}
	}
	// minio-go ends a listing quietly when its context is done.
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	return page, false, nil
}

func (b *minioBackend) deleteBatch(ctx context.Context, keys []string) ([]keyFailure, error) {
	objects := iter.Seq[minio.ObjectInfo](func(yield func(minio.ObjectInfo) bool) {
		for _, k := range keys {
			if !yield(minio.ObjectInfo{Key: k}) {
				return
			}
		}
	})
	results, err := b.core.RemoveObjectsWithIter(ctx, b.bucket, objects, minio.RemoveObjectsOptions{})
	if err != nil {
		return nil, err
	}
	var failed []keyFailure
	for r := range results {
		if r.Err == nil {
			continue
		}
		// A key's own failure is an ErrorResponse made from the reply's
		// <Error> element, without an HTTP status; anything else failed
		// the whole request.
		var re minio.ErrorResponse
		if r.ObjectName == "" || !errors.As(r.Err, &re) || re.StatusCode != 0 || re.Code == "" {
			return nil, r.Err
		}
		failed = append(failed, keyFailure{key: r.ObjectName, err: fmt.Errorf("%s: %w", re.Code, r.Err)})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return failed, nil
}

func (b *minioBackend) close() { b.transport.CloseIdleConnections() }
