import { TOKEN_HEADER } from "../../lib/auth.ts";
import { authorizeImageFile, buildFileResponse, checkFileName, openImageFile } from "../../lib/files.ts";
import { handler } from "../../lib/route.ts";

export const GET = handler(
  {
    auth: "none",
    summary: "Stream one file; image archives need an admin token or the provision token of a node using that image",
    responses: {
      200: "file contents",
      206: "byte range",
      304: "not modified",
      400: "file name with a path separator or ..",
      401: "token missing or invalid",
      403: "provision token of a node with another image",
      404: "no such file",
      416: "range outside the file",
    },
  },
  async ({ c, services, params }) => {
    const name = checkFileName(params.filename);
    await authorizeImageFile(services.tokens, services.db.orm, c.req.header(TOKEN_HEADER), name);
    const file = await openImageFile(services.config.files.imageFiles, name);
    return buildFileResponse(file, {
      method: c.req.method,
      range: c.req.header("range"),
      ifRange: c.req.header("if-range"),
      ifNoneMatch: c.req.header("if-none-match"),
      ifModifiedSince: c.req.header("if-modified-since"),
    });
  },
);
