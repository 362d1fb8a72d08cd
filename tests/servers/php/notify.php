<?php
// A hand-written PostFinance post-sale handler, in the style merchants write on top of marlon-ogone
// (filter by the SHA-OUT list, drop empty values, upper-case and sort the names, NAME=value.passphrase
// for each, hash, compare). Written for feedback-check's tests; run with `php -S`.
// Settings come from the environment: PF_SHA_OUT (the passphrase, as PHP gets it: bytes),
// PF_ALGORITHM (sha1/sha256/sha512), PF_ORDERS (comma-separated order references the shop knows),
// PF_PROCESSED (a file to which every processed order is appended).

$passphrase = (string) getenv('PF_SHA_OUT');
$algorithm = getenv('PF_ALGORITHM') ?: 'sha512';
$orders = array_filter(explode(',', (string) getenv('PF_ORDERS')));
$shaOut = ['AAVADDRESS', 'AAVCHECK', 'AAVMAIL', 'AAVNAME', 'AAVPHONE', 'AAVZIP', 'ACCEPTANCE', 'ALIAS', 'AMOUNT',
    'BIC', 'BIN', 'BRAND', 'CARDNO', 'CCCTY', 'CN', 'COLLECTOR_BIC', 'COLLECTOR_IBAN', 'COMPLUS', 'CREATION_STATUS',
    'CREDITDEBIT', 'CURRENCY', 'CVCCHECK', 'DCC_COMMPERCENTAGE', 'DCC_CONVAMOUNT', 'DCC_CONVCCY', 'DCC_EXCHRATE',
    'DCC_EXCHRATESOURCE', 'DCC_EXCHRATETS', 'DCC_INDICATOR', 'DCC_MARGINPERCENTAGE', 'DCC_VALIDHOURS', 'DEVICEID',
    'DIGESTCARDNO', 'ECI', 'ED', 'EMAIL', 'ENCCARDNO', 'FXAMOUNT', 'FXCURRENCY', 'IP', 'IPCTY', 'MANDATEID',
    'MOBILEMODE', 'NBREMAILUSAGE', 'NBRIPUSAGE', 'NBRIPUSAGE_ALLTX', 'NBRUSAGE', 'NCERROR', 'ORDERID', 'PAYID',
    'PAYIDSUB', 'PAYMENT_REFERENCE', 'PM', 'SCO_CATEGORY', 'SCORING', 'SEQUENCETYPE', 'SIGNDATE', 'STATUS',
    'SUBBRAND', 'SUBSCRIPTION_ID', 'TICKET', 'TRXDATE', 'VC'];

$params = array_change_key_case(array_merge($_GET, $_POST), CASE_UPPER);
$received = isset($params['SHASIGN']) ? (string) $params['SHASIGN'] : '';
unset($params['SHASIGN']);

$signed = [];
foreach ($params as $name => $value) {
    if ($value !== '' && in_array($name, $shaOut, true)) {
        $signed[$name] = $value;
    }
}
ksort($signed);
$string = '';
foreach ($signed as $name => $value) {
    $string .= $name . '=' . $value . $passphrase;
}
if (strtoupper(hash($algorithm, $string)) !== strtoupper($received)) {
    http_response_code(400);
    header('Content-Type: text/plain');
    echo 'Bad request';
    exit;
}

$order = isset($params['ORDERID']) ? (string) $params['ORDERID'] : '';
if (!in_array($order, $orders, true)) {
    http_response_code(404);
    header('Content-Type: text/plain');
    echo 'Order ' . htmlspecialchars($order) . ' not found';
    exit;
}
if (getenv('PF_PROCESSED')) {
    file_put_contents(getenv('PF_PROCESSED'), $order . "\n", FILE_APPEND);
}
header('Content-Type: text/plain');
echo 'OK';
