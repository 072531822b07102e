package objectstore

// The s3:// backend, with aws-sdk-go-v2: AWS S3 itself, or an S3-compatible
// service at ?endpoint= (path-style addressing then, as MinIO and most
// compatible services want).
//
// Credentials: Options.Credentials, else EnvAccessKey/EnvSecretKey, as
// static keys; when neither is set, the AWS default chain (AWS_*
// environment variables, shared config and credentials files, web
// identity, ECS and EC2 instance roles), resolved lazily on the first
// request. Region: ?region=, else the AWS configuration (AWS_REGION,
// shared config); with an endpoint and no region anywhere, us-east-1.
//
// The SDK's retryer is aws.NopRetryer: retries are the policy's
// (retry.go). Checksums are computed and validated only where the API
// requires them ("when required"), as S3-compatible servers that predate
// S3's default integrity protections, MinIO among them, need.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

type s3Backend struct {
	client    *s3.Client
	bucket    string
	transport *http.Transport
}

var _ backend = (*s3Backend)(nil)

// NewS3 opens the s3 store at loc (see ParseURL). It makes no request:
// a wrong bucket or credentials show on the first call.
func NewS3(ctx context.Context, loc Location, opts Options) (Store, error) {
	if loc.Scheme != "s3" || loc.Bucket == "" {
		return nil, fmt.Errorf("s3 object store: location %s is not an s3 bucket", loc)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	creds, err := staticCredentials(opts.Credentials)
	if err != nil {
		return nil, err
	}
	load := []func(*config.LoadOptions) error{
		// A BuildableClient, so that LoadDefaultConfig can apply
		// AWS_CA_BUNDLE to it; its transport is taken out below.
		config.WithHTTPClient(awshttp.NewBuildableClient()),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if loc.Region != "" {
		load = append(load, config.WithRegion(loc.Region))
	}
	if !creds.IsZero() {
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(creds.AccessKey, creds.SecretKey, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("s3 object store %s: loading the AWS configuration: %w", loc, err)
	}
	// Our own client around the configured transport, so that Close can
	// close its idle connections.
	bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return nil, fmt.Errorf("s3 object store %s: unexpected HTTP client %T", loc, cfg.HTTPClient)
	}
	transport := bc.GetTransport()
	transport.MaxIdleConns = max(transport.MaxIdleConns, opts.MaxConcurrency)
	transport.MaxIdleConnsPerHost = opts.MaxConcurrency
	cfg.HTTPClient = &http.Client{Transport: transport, CheckRedirect: sameMethodRedirects}
	if cfg.Region == "" {
		if loc.Endpoint == "" {
			return nil, fmt.Errorf("s3 object store %s: no region: add ?region= to the URL or set AWS_REGION", loc)
		}
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if loc.Endpoint != "" {
			o.BaseEndpoint = aws.String(loc.Endpoint)
			o.UsePathStyle = true
		}
	})
	b := &s3Backend{client: client, bucket: loc.Bucket, transport: transport}
	caps := Capabilities{PutIfAbsent: !opts.NoConditionalPuts, PutIfMatch: !opts.NoConditionalPuts}
	return newNetStore(loc, opts, b, caps), nil
}

// sameMethodRedirects follows only 307 and 308 redirects, which repeat the
// request as it was (as the SDK's own client does).
func sameMethodRedirects(r *http.Request, via []*http.Request) error {
	if len(via) >= 10 || r.Response == nil ||
		(r.Response.StatusCode != http.StatusTemporaryRedirect && r.Response.StatusCode != http.StatusPermanentRedirect) {
		return http.ErrUseLastResponse
	}
	return nil
}

// staticCredentials returns c, else the credentials in the environment
// (either may be zero: none set).
func staticCredentials(c Credentials) (Credentials, error) {
	if c.IsZero() {
		c = CredentialsFromEnv()
	}
	if err := c.validate(); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

func (b *s3Backend) describe(err error) remoteFailure {
	var f remoteFailure
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		f.status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		f.code = ae.ErrorCode()
	}
	var ke *keyDeleteError
	if errors.As(err, &ke) {
		f.code = ke.code
	}
	return f
}

// keyDeleteError is one key's failure in a DeleteObjects reply.
type keyDeleteError struct{ code, msg string }

func (e *keyDeleteError) Error() string { return e.code + ": " + e.msg }

func condInput(c putCond) (ifNoneMatch, ifMatch *string) {
	if c.ifNoneMatch {
		ifNoneMatch = aws.String("*")
	}
	if c.ifMatch != "" {
		ifMatch = aws.String(`"` + c.ifMatch + `"`)
	}
	return ifNoneMatch, ifMatch
}

func (b *s3Backend) putObject(ctx context.Context, key string, body []byte, c putCond) (string, error) {
	in := &s3.PutObjectInput{
		Bucket:        &b.bucket,
		Key:           &key,
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	}
	in.IfNoneMatch, in.IfMatch = condInput(c)
	out, err := b.client.PutObject(ctx, in)
	if err != nil {
		return "", err
	}
	return unquoteETag(aws.ToString(out.ETag)), nil
}

func (b *s3Backend) createMultipart(ctx context.Context, key string) (string, error) {
	out, err := b.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.UploadId), nil
}

func (b *s3Backend) uploadPart(ctx context.Context, key, uploadID string, number int, body []byte) (string, error) {
	out, err := b.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        &b.bucket,
		Key:           &key,
		UploadId:      &uploadID,
		PartNumber:    aws.Int32(int32(number)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

func (b *s3Backend) completeMultipart(ctx context.Context, key, uploadID string, parts []completedPart, c putCond) (string, error) {
	done := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		done[i] = types.CompletedPart{ETag: aws.String(p.etag), PartNumber: aws.Int32(int32(p.number))}
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          &b.bucket,
		Key:             &key,
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	}
	in.IfNoneMatch, in.IfMatch = condInput(c)
	out, err := b.client.CompleteMultipartUpload(ctx, in)
	if err != nil {
		return "", err
	}
	return unquoteETag(aws.ToString(out.ETag)), nil
}

func (b *s3Backend) abortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: &uploadID})
	return err
}

func (b *s3Backend) head(ctx context.Context, key string) (ObjectInfo, error) {
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    unquoteETag(aws.ToString(out.ETag)),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

func (b *s3Backend) get(ctx context.Context, key, rng string) (io.ReadCloser, ObjectInfo, error) {
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: &key}
	if rng != "" {
		in.Range = &rng
	}
	out, err := b.client.GetObject(ctx, in)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	info := ObjectInfo{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    unquoteETag(aws.ToString(out.ETag)),
		ModTime: aws.ToTime(out.LastModified),
	}
	if out.ContentRange != nil {
		n, ok := parseContentRange(*out.ContentRange)
		if !ok {
			out.Body.Close()
			return nil, ObjectInfo{}, fmt.Errorf("get: unreadable Content-Range %q", *out.ContentRange)
		}
		info.Size = n
	}
	return out.Body, info, nil
}

func (b *s3Backend) list(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, bool, error) {
	in := &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: &prefix, MaxKeys: aws.Int32(s3PageSize)}
	if startAfter != "" {
		in.StartAfter = &startAfter
	}
	out, err := b.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, false, err
	}
	page := make([]ObjectInfo, len(out.Contents))
	for i, o := range out.Contents {
		page[i] = ObjectInfo{
			Key:     aws.ToString(o.Key),
			Size:    aws.ToInt64(o.Size),
			ETag:    unquoteETag(aws.ToString(o.ETag)),
			ModTime: aws.ToTime(o.LastModified),
		}
	}
	return page, aws.ToBool(out.IsTruncated), nil
}

func (b *s3Backend) deleteBatch(ctx context.Context, keys []string) ([]keyFailure, error) {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		ids[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &b.bucket,
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return nil, err
	}
	var failed []keyFailure
	for _, e := range out.Errors {
		failed = append(failed, keyFailure{
			key: aws.ToString(e.Key),
			err: &keyDeleteError{code: aws.ToString(e.Code), msg: aws.ToString(e.Message)},
		})
	}
	return failed, nil
}

func (b *s3Backend) close() { b.transport.CloseIdleConnections() }
